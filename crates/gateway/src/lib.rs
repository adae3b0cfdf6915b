//! keyloop turns a pool of upstream LLM credentials into one endpoint.
//!
//! The way of one request (see `docs/architecture.md`):
//! `edge` takes it in (auth, body limit, JSON check) and builds a `relay::RequestCtx`;
//! `relay` asks the `pool` for a credential (`acquire`), calls the provider through
//! `providers`, classifies the answer once (`relay::outcome`) and `report`s it back to the pool,
//! which drives that credential's state machine. Before the first byte reaches the client a
//! retryable outcome fails over to another credential; a stream that fails before its first
//! content event fails over too, the replacement spliced in unseen; after content, a failure
//! becomes one protocol-correct error event. `store` keeps credentials (sealed by `vault`), their state,
//! clients and batch affinity; `app` wires it all and owns every background task.

pub mod accounting;
pub mod admin;
pub mod app;
pub mod cli;
pub mod clients;
pub mod config;
pub mod demo;
pub mod edge;
pub mod keyring;
pub mod pool;
pub mod providers;
pub mod relay;
pub mod store;
pub mod telemetry;
pub mod types;
pub mod vault;
