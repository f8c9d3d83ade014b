//! The languages answers are given in: English, the data's own, and
//! Ukrainian. Names come from the data (`name_uk`, `title_uk`); the words
//! the service itself writes (kinds, statuses, problem titles, the labels of
//! the embeds) are translated here. A missing Ukrainian name falls back to
//! the English one, and the answer says so; nothing is machine-translated.

use super::agreement::{AgreementKind, AgreementStatus};
use super::marker::MarkerStatus;
use super::pledge::{PledgeBasis, PledgeKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum Lang {
    #[default]
    En,
    Uk,
}

tokio::task_local! {
    /// The language of the request being answered, for what is written far
    /// from its handler (problem bodies).
    static LANG: Lang;
}

/// Runs `work` (the answering of one request) in `lang`.
pub async fn with_lang<F: std::future::Future>(lang: Lang, work: F) -> F::Output {
    LANG.scope(lang, work).await
}

/// The language of the request being answered; English outside one.
pub fn current() -> Lang {
    LANG.try_with(|lang| *lang).unwrap_or_default()
}

impl Lang {
    pub const ALL: &'static [Lang] = &[Lang::En, Lang::Uk];

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Uk => "uk",
        }
    }

    /// `?lang=`: `en` or `uk` (any case).
    pub fn parse(text: &str) -> Result<Lang, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "en" => Ok(Lang::En),
            "uk" => Ok(Lang::Uk),
            _ => Err("must be en or uk".into()),
        }
    }

    /// The language an Accept-Language header prefers among ours (RFC 9110
    /// §12.5.4: by quality, then order; `uk-UA` counts as `uk`); English
    /// when it names neither.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(u16, Lang)> = None;
        for range in header.split(',').take(32) {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .next()
                .map_or(1000, quality_thousandths);
            let primary = tag.split('-').next().unwrap_or("");
            let lang = match primary {
                "uk" => Lang::Uk,
                "en" => Lang::En,
                _ => continue,
            };
            if quality > 0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }

    /// An agreement kind as words.
    pub fn agreement_kind(self, kind: AgreementKind) -> &'static str {
        match (self, kind) {
            (Lang::En, AgreementKind::BilateralSecurity) => "bilateral security agreement",
            (Lang::En, AgreementKind::Partnership) => "partnership",
            (Lang::En, AgreementKind::Declaration) => "declaration",
            (Lang::En, AgreementKind::Other) => "other",
            (Lang::Uk, AgreementKind::BilateralSecurity) => "двостороння безпекова угода",
            (Lang::Uk, AgreementKind::Partnership) => "партнерство",
            (Lang::Uk, AgreementKind::Declaration) => "декларація",
            (Lang::Uk, AgreementKind::Other) => "інше",
        }
    }

    pub fn agreement_status(self, status: AgreementStatus) -> &'static str {
        match (self, status) {
            (Lang::En, AgreementStatus::Negotiating) => "being negotiated",
            (Lang::En, AgreementStatus::Signed) => "signed",
            (Lang::En, AgreementStatus::Ratified) => "ratified",
            (Lang::En, AgreementStatus::InForce) => "in force",
            (Lang::En, AgreementStatus::Expired) => "expired",
            (Lang::En, AgreementStatus::Terminated) => "terminated",
            (Lang::Uk, AgreementStatus::Negotiating) => "триває підготовка",
            (Lang::Uk, AgreementStatus::Signed) => "підписано",
            (Lang::Uk, AgreementStatus::Ratified) => "ратифіковано",
            (Lang::Uk, AgreementStatus::InForce) => "набула чинності",
            (Lang::Uk, AgreementStatus::Expired) => "строк дії минув",
            (Lang::Uk, AgreementStatus::Terminated) => "припинено",
        }
    }

    pub fn pledge_kind(self, kind: PledgeKind) -> &'static str {
        match (self, kind) {
            (Lang::En, PledgeKind::Military) => "military",
            (Lang::En, PledgeKind::Financial) => "financial",
            (Lang::En, PledgeKind::Humanitarian) => "humanitarian",
            (Lang::En, PledgeKind::Reconstruction) => "reconstruction",
            (Lang::En, PledgeKind::Mixed) => "mixed",
            (Lang::Uk, PledgeKind::Military) => "військова",
            (Lang::Uk, PledgeKind::Financial) => "фінансова",
            (Lang::Uk, PledgeKind::Humanitarian) => "гуманітарна",
            (Lang::Uk, PledgeKind::Reconstruction) => "відбудова",
            (Lang::Uk, PledgeKind::Mixed) => "змішана",
        }
    }

    pub fn pledge_basis(self, basis: PledgeBasis) -> &'static str {
        match (self, basis) {
            (Lang::En, PledgeBasis::Total) => "in total",
            (Lang::En, PledgeBasis::PerYear) => "per year",
            (Lang::Uk, PledgeBasis::Total) => "загалом",
            (Lang::Uk, PledgeBasis::PerYear) => "щороку",
        }
    }

    pub fn marker_status(self, status: MarkerStatus) -> &'static str {
        match (self, status) {
            (Lang::En, MarkerStatus::Contested) => "contested",
            (Lang::En, MarkerStatus::Unverified) => "unverified",
            (Lang::Uk, MarkerStatus::Contested) => "оскаржується",
            (Lang::Uk, MarkerStatus::Unverified) => "не підтверджено",
        }
    }

    /// The title of a problem with this status (English: the reason phrase).
    pub fn problem_title(self, status: u16, english: &'static str) -> &'static str {
        if self == Lang::En {
            return english;
        }
        match status {
            400 => "Некоректний запит",
            401 => "Потрібна автентифікація",
            403 => "Доступ заборонено",
            404 => "Не знайдено",
            405 => "Метод не дозволено",
            406 => "Неприйнятний формат",
            408 => "Час очікування запиту вичерпано",
            409 => "Конфлікт",
            412 => "Передумова не виконується",
            413 => "Запит завеликий",
            415 => "Непідтримуваний тип даних",
            422 => "Дані не пройшли перевірку",
            428 => "Потрібна передумова",
            429 => "Забагато запитів",
            503 => "Сервіс недоступний",
            507 => "Недостатньо місця",
            _ => "Внутрішня помилка",
        }
    }

    /// A problem's detail in this language: Ukrainian for the common ones
    /// (by their English opening, which the rest of the text follows), else
    /// None (the English detail stays, and the problem says so).
    pub fn problem_detail(self, english: &str) -> Option<String> {
        if self == Lang::En {
            return Some(english.to_owned());
        }
        const OPENINGS: &[(&str, &str)] = &[
            ("invalid query parameters: ", "недійсні параметри запиту: "),
            ("no agreement ", "немає угоди "),
            ("no pledge ", "немає зобов’язання "),
            ("no source ", "немає джерела "),
            ("no cooperation area ", "немає сфери співпраці "),
            ("no partner matches ", "жоден партнер не відповідає "),
            ("there is no route ", "немає маршруту "),
            ("no such resource", "такого ресурсу немає"),
            (
                "this method is not allowed on this resource; see the Allow header",
                "цей метод не дозволено для цього ресурсу; див. заголовок Allow",
            ),
            (
                "the store cannot be reached right now; retry shortly",
                "сховище зараз недоступне; спробуйте трохи згодом",
            ),
            (
                "the request took too long and was abandoned",
                "запит тривав задовго й був перерваний",
            ),
            (
                "an unexpected error occurred; it has been logged",
                "сталася неочікувана помилка; її записано в журнал",
            ),
            (
                "too many requests: retry in ",
                "забагато запитів: повторіть через ",
            ),
        ];
        if let Some(count) = english.strip_suffix(" field(s) are not valid; see errors") {
            return Some(format!("недійсних полів: {count}; див. errors"));
        }
        OPENINGS
            .iter()
            .find_map(|(en, uk)| english.strip_prefix(en).map(|rest| format!("{uk}{rest}")))
    }
}

/// "q=0.8" as thousandths; a malformed quality counts as 0 (not acceptable).
fn quality_thousandths(text: &str) -> u16 {
    let text = text.trim();
    let Some((whole, fraction)) = text.split_once('.').or(Some((text, ""))) else {
        return 0;
    };
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().unwrap_or(0);
    match whole {
        "1" if thousandths == 0 => 1000,
        "0" => thousandths,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_of_ours() {
        assert_eq!(Lang::from_accept_language("uk"), Lang::Uk);
        assert_eq!(
            Lang::from_accept_language("uk-UA,uk;q=0.9,en;q=0.8"),
            Lang::Uk
        );
        assert_eq!(Lang::from_accept_language("en-GB,uk;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept_language("de, uk;q=0.3"), Lang::Uk);
        assert_eq!(Lang::from_accept_language("en;q=0.2, uk;q=0.9"), Lang::Uk);
        assert_eq!(Lang::from_accept_language("fr"), Lang::En);
        assert_eq!(Lang::from_accept_language("uk;q=0"), Lang::En);
        assert_eq!(Lang::from_accept_language("uk;q=2"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
    }

    #[test]
    fn common_problem_details_read_in_ukrainian() {
        assert_eq!(
            Lang::Uk.problem_detail("no agreement \"ua-xx\"").as_deref(),
            Some("немає угоди \"ua-xx\"")
        );
        assert_eq!(
            Lang::Uk
                .problem_detail("2 field(s) are not valid; see errors")
                .as_deref(),
            Some("недійсних полів: 2; див. errors")
        );
        assert_eq!(Lang::Uk.problem_detail("something rare"), None);
        assert_eq!(
            Lang::En.problem_detail("something rare").as_deref(),
            Some("something rare")
        );
    }
}
