//! Per-model holds: a key kept out of rotation for some models only, because the provider
//! said so for those models (a 403 for the model asked, a subscription window that covers only
//! Opus or Sonnet models). The key keeps serving every other model.

use crate::types::{EpochMs, ModelFamily};

/// How long a key stays out for a model it was refused (403) when nothing says otherwise: a
/// model grant is an account setting that rarely changes within the hour.
pub(super) const MODEL_DENIED_MS: i64 = 3_600_000;

/// Which models a hold covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Models {
    Exact(Box<str>),
    Family(ModelFamily),
}

impl Models {
    fn covers(&self, model: &str) -> bool {
        match self {
            Self::Exact(id) => **id == *model,
            Self::Family(family) => family.covers(model),
        }
    }

    pub(super) fn label(&self) -> String {
        match self {
            Self::Exact(id) => id.to_string(),
            Self::Family(family) => format!("{} models", family.as_str()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Hold {
    pub models: Models,
    pub until: EpochMs,
    pub reason: String,
}

/// The holds of one key. Few (one per refused model or window), so a list.
#[derive(Clone, Debug, Default)]
pub(super) struct Holds(Vec<Hold>);

impl Holds {
    /// Holds `models` until `until` (a later hold for the same models replaces the earlier).
    pub(super) fn hold(&mut self, models: Models, until: EpochMs, reason: String) {
        self.0.retain(|h| h.models != models);
        self.0.push(Hold {
            models,
            until,
            reason,
        });
    }

    /// When the hold on `model` ends, if one is in force at `now`.
    pub(super) fn until(&self, model: Option<&str>, now: EpochMs) -> Option<EpochMs> {
        let model = model?;
        self.0
            .iter()
            .filter(|h| h.until > now && h.models.covers(model))
            .map(|h| h.until)
            .max()
    }

    /// Whether a hold on exactly `models` is in force at `now`.
    pub(super) fn holds(&self, models: &Models, now: EpochMs) -> bool {
        self.0.iter().any(|h| h.until > now && h.models == *models)
    }

    /// Forgets ended holds.
    pub(super) fn prune(&mut self, now: EpochMs) {
        self.0.retain(|h| h.until > now);
    }

    pub(super) fn live(&self, now: EpochMs) -> impl Iterator<Item = &Hold> {
        self.0.iter().filter(move |h| h.until > now)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
