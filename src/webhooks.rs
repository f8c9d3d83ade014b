//! The webhook dispatcher: a task `accords serve` runs beside the server.
//! It claims due deliveries from the outbox (queued by the store, in each
//! change's transaction), signs and sends them, and records each attempt:
//! delivered on a 2xx, else tried again with exponential backoff and jitter
//! until the retry window is over, then given up and the subscription
//! disabled. A claim is a lease: deliveries an instance took and never
//! finished (it crashed) are taken again when it expires, so every change
//! is delivered at least once, with a `webhook-id` that is the same on
//! every attempt for receivers to drop duplicates.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::{Notify, Semaphore};

use crate::domain::webhook;
use crate::store::webhooks::{Delivery, Outcome, Target, WebhookStore};
use crate::store::{ChangeFilter, Store};

/// How deliveries are sent and retried (see docs/webhooks.md).
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// One attempt (connect, send, answer) may take this long.
    pub timeout: Duration,
    /// Failed deliveries are retried for this long after their first attempt.
    pub retry_for: Duration,
    /// The first retry's delay; each next one doubles, up to [`MAX_DELAY`].
    pub retry_base: Duration,
    /// How often the outbox is looked at without being woken (writes by
    /// other instances on SQLite, retries falling due).
    pub poll: Duration,
    /// Receivers on loopback, private and link-local addresses are allowed.
    pub allow_private: bool,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retry_for: Duration::from_secs(24 * 60 * 60),
            retry_base: Duration::from_secs(5),
            poll: Duration::from_secs(1),
            allow_private: false,
        }
    }
}

/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(60 * 60);
/// Deliveries sent at once by one instance (to different subscriptions:
/// each subscription has one in flight at a time).
const CONCURRENT_SENDS: usize = 16;
/// Longest error text kept with a delivery.
const MAX_ERROR_CHARS: usize = 300;

/// The running dispatcher; stops when dropped.
pub struct Dispatcher {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Dispatcher {
    /// Starts delivering the store's outbox; fails only when no HTTP client can be built.
    pub fn start(store: Arc<dyn Store>, settings: DeliverySettings) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // A redirect could lead anywhere, a private address included:
            // receivers answer 2xx themselves.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver {
                allow_private: settings.allow_private,
            }))
            .user_agent(concat!("accords-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        let context = Arc::new(Context {
            webhooks: WebhookStore::new(store.database()),
            store,
            client,
            settings,
            finished: Notify::new(),
        });
        Ok(Self {
            task: tokio::spawn(run(context)),
        })
    }
}

struct Context {
    store: Arc<dyn Store>,
    webhooks: WebhookStore,
    client: reqwest::Client,
    settings: DeliverySettings,
    /// A send finished: the next delivery of its subscription may be due.
    finished: Notify,
}

impl Context {
    /// How long a claim holds: twice an attempt's timeout, so a live
    /// instance always records its attempt before anyone takes it over.
    fn lease(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.settings.timeout * 2)
            .unwrap_or(chrono::TimeDelta::seconds(20))
            .max(chrono::TimeDelta::seconds(1))
    }
}

async fn run(context: Arc<Context>) {
    let slots = Arc::new(Semaphore::new(CONCURRENT_SENDS));
    let mut notifications = context.store.change_notifications().await;
    // Commits through this process's store wake the dispatchers at once,
    // rather than at their next poll (PostgreSQL's notifications reach them
    // from other instances too).
    let mut writes = context.store.commits();
    loop {
        let free = slots.available_permits();
        if free > 0 {
            let now = Utc::now();
            let limit = u32::try_from(free).unwrap_or(1);
            match context
                .webhooks
                .claim(now, now + context.lease(), limit)
                .await
            {
                Ok(claimed) => {
                    let full = claimed.len() == free;
                    for delivery in claimed {
                        let Ok(permit) = slots.clone().try_acquire_owned() else {
                            break;
                        };
                        let context = context.clone();
                        tokio::spawn(async move {
                            attempt(&context, delivery).await;
                            drop(permit);
                            context.finished.notify_one();
                        });
                    }
                    if full {
                        continue;
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot claim webhook deliveries"),
            }
        }
        let notified = async {
            match notifications.as_mut() {
                Some(receiver) => receiver.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = context.finished.notified() => {}
            _ = writes.changed() => {}
            open = notified => if !open { notifications = None },
            () = tokio::time::sleep(context.settings.poll) => {}
        }
    }
}

/// Sends one claimed delivery and records how it went.
async fn attempt(context: &Context, delivery: Delivery) {
    let sent = send(context, &delivery).await;
    let at = Utc::now();
    let outcome = decide(&context.settings, &delivery, sent, at);
    match &outcome {
        Outcome::Delivered { status } => {
            tracing::debug!(message_id = %delivery.message_id, status, "webhook delivered")
        }
        Outcome::Retry { error, .. } => {
            tracing::info!(message_id = %delivery.message_id, %error, attempts = delivery.attempts + 1, "webhook delivery failed; retrying")
        }
        Outcome::GaveUp { error, .. } => {
            tracing::warn!(message_id = %delivery.message_id, subscription = %delivery.subscription_id, %error, "webhook delivery failed for the whole retry window; given up")
        }
    }
    if let Err(error) = context
        .webhooks
        .record_attempt(&delivery, at, &outcome)
        .await
    {
        // The lease runs out and the delivery is sent again: at least once.
        tracing::warn!(%error, message_id = %delivery.message_id, "cannot record a webhook attempt");
    }
}

/// What an attempt got: the 2xx status, or the status (if any) and why it failed.
type Sent = Result<i64, (Option<i64>, String)>;

async fn send(context: &Context, delivery: &Delivery) -> Sent {
    let target = match context.webhooks.target(&delivery.subscription_id).await {
        Ok(Some(target)) => target,
        Ok(None) => return Err((None, "the subscription was deleted".into())),
        Err(error) => return Err((None, format!("cannot read the subscription: {error}"))),
    };
    let body = payload(context.store.as_ref(), delivery)
        .await
        .map_err(|error| (None, error))?;
    post(context, &target, &delivery.message_id, body).await
}

/// The body: the event type, when it happened, and the change as the
/// change feed (/v1/changes) shows it.
async fn payload(store: &dyn Store, delivery: &Delivery) -> Result<Vec<u8>, String> {
    let body = match delivery.feed_seq {
        None => json!({
            "type": delivery.event,
            "timestamp": timestamp(delivery.created_at),
            "data": {"webhook": delivery.subscription_id},
        }),
        Some(seq) => {
            let filter = ChangeFilter {
                since: seq - 1,
                limit: 1,
                ..ChangeFilter::default()
            };
            let entry = store
                .changes(&filter)
                .await
                .map_err(|e| format!("cannot read change {seq}: {e}"))?
                .into_iter()
                .find(|entry| entry.seq == seq)
                .ok_or_else(|| format!("change {seq} is not in the history"))?;
            json!({
                "type": delivery.event,
                "timestamp": timestamp(entry.at),
                "data": entry,
            })
        }
    };
    serde_json::to_vec(&body).map_err(|e| e.to_string())
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn post(context: &Context, target: &Target, message_id: &str, body: Vec<u8>) -> Sent {
    let fail = |error: String| (None, error);
    let url = webhook::parse_url(&target.url, context.settings.allow_private).map_err(fail)?;
    // Each attempt is signed at its own time, so receivers can refuse
    // stale timestamps (replays) and still accept a late retry.
    let timestamp = Utc::now().timestamp();
    let signature = webhook::sign(&target.secret, message_id, timestamp, &body).map_err(fail)?;
    let response = context
        .client
        .post(url)
        .header("webhook-id", message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|error| fail(describe(&error, context.settings.timeout)))?;
    let status = i64::from(response.status().as_u16());
    if response.status().is_success() {
        Ok(status)
    } else {
        Err((
            Some(status),
            format!("the receiver answered {}", response.status()),
        ))
    }
}

/// A client error with its causes ("error sending request" alone says little).
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    if let Some((at, _)) = text.char_indices().nth(MAX_ERROR_CHARS) {
        text.truncate(at);
        text.push('…');
    }
    text
}

/// Delivered on a 2xx; else retried after the backoff, unless that would
/// pass the retry window (counted from the first attempt): then given up,
/// and the subscription, failing all that time, disabled.
fn decide(
    settings: &DeliverySettings,
    delivery: &Delivery,
    sent: Sent,
    at: DateTime<Utc>,
) -> Outcome {
    let (status, error) = match sent {
        Ok(status) => return Outcome::Delivered { status },
        Err(failure) => failure,
    };
    let attempts = delivery.attempts + 1;
    let first = delivery.first_attempt_at.unwrap_or(at);
    let window = chrono::TimeDelta::from_std(settings.retry_for).unwrap_or(chrono::TimeDelta::MAX);
    let delay = chrono::TimeDelta::from_std(backoff(settings.retry_base, attempts))
        .unwrap_or(chrono::TimeDelta::hours(1));
    let next_attempt_at = at + delay;
    if next_attempt_at.signed_duration_since(first) <= window {
        return Outcome::Retry {
            status,
            error,
            next_attempt_at,
        };
    }
    let disable_reason = delivery.feed_seq.is_some().then(|| {
        format!(
            "delivery {} failed {attempts} times over the retry window ({} s); last error: {error}",
            delivery.message_id,
            settings.retry_for.as_secs()
        )
    });
    Outcome::GaveUp {
        status,
        error,
        disable_reason,
    }
}

/// The delay after the `attempts`-th failure: `base` doubled each time up
/// to [`MAX_DELAY`], then half of it fixed and half random ("equal
/// jitter"), so receivers coming back are not hit by every retry at once.
pub fn backoff(base: Duration, attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = base
        .checked_mul(1u32 << doublings)
        .unwrap_or(MAX_DELAY)
        .min(MAX_DELAY);
    let half = full / 2;
    let mut random = [0u8; 8];
    let fraction = match getrandom::fill(&mut random) {
        Ok(()) => (u64::from_le_bytes(random) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    };
    half + half.mul_f64(fraction)
}

/// Resolves receivers' host names at delivery time and keeps only the
/// addresses a webhook may reach: a name that pointed at a public address
/// when the subscription was made and at a private one now (DNS
/// rebinding) is refused, since the client connects only to what this
/// answers.
struct CheckedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|address| webhook::check_address(address.ip(), allow_private).is_ok())
                .collect();
            if allowed.is_empty() {
                let shown: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "{host} resolves to no address a webhook may reach ({}); set ACCORDS_WEBHOOK_ALLOW_PRIVATE=true to allow private ones",
                    shown.join(", ")
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(5);
        for attempts in 1..=12 {
            let full = base
                .checked_mul(1 << (attempts - 1))
                .unwrap()
                .min(MAX_DELAY);
            let delay = backoff(base, attempts);
            assert!(delay >= full / 2 && delay <= full, "{attempts}: {delay:?}");
        }
        assert!(backoff(base, 1_000) <= MAX_DELAY);
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_not_connected_to() {
        use reqwest::dns::Resolve;
        use std::str::FromStr;
        let name = || reqwest::dns::Name::from_str("localhost").unwrap();
        let refused = CheckedResolver {
            allow_private: false,
        }
        .resolve(name())
        .await;
        let error = refused.err().expect("localhost is refused").to_string();
        assert!(error.contains("no address a webhook may reach"), "{error}");
        let allowed: Vec<SocketAddr> = CheckedResolver {
            allow_private: true,
        }
        .resolve(name())
        .await
        .unwrap()
        .collect();
        assert!(!allowed.is_empty() && allowed.iter().all(|a| a.ip().is_loopback()));
    }
}
