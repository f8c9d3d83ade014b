//! The HTTP suite, written once and run on SQLite and on PostgreSQL.

mod common;

mod contract;

mod accounting;
mod agreements;
mod children;
mod data;
mod desk;
mod errors;
mod freshness;
mod hostile;
mod http_layer;
mod live;
mod operations;
mod partners_areas;
mod plans;
mod publishing;
mod queries;
mod rates;
mod readme;
mod reporter;
mod revisions;
mod safe_writes;
mod scale;
mod server;
mod webhooks;
