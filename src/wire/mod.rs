//! Wire types: the loose `*Body` shapes that request bodies and import files
//! are deserialised into, with their OpenAPI schemas, and their parsing into
//! the always-valid types of [`crate::domain`]. Both the HTTP layer and the
//! CLI read them, so they live beside both rather than inside either.

pub mod agreement;
pub mod area;
pub mod dataset;
pub mod partner;
pub mod pledge;
pub mod rate;
pub mod source;
pub mod spreadsheet;
