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
mod live;
mod operations;
mod partners_areas;
mod plans;
mod queries;
mod rates;
mod readme;
mod safe_writes;
mod scale;
mod server;
