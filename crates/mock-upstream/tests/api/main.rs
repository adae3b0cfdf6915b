//! The mock over real HTTP, as keyloop's tests use it: one binary, one module per concern.

mod auth;
mod batches;
mod control;
mod limits;
mod messages;
mod models;
mod organizations;
mod recording;
mod scenarios;
mod streaming;
mod subscriptions;
mod support;
mod tokens;
