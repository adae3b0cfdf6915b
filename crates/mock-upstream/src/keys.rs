//! The configured keys and everything the mock keeps per key: its limits, scripted
//! scenarios, batches (the key's workspace) and call tallies.

use std::collections::HashMap;
use std::sync::Arc;

use crate::MockKey;
use crate::batches::Batches;
use crate::limits::Buckets;
use crate::record::Tally;
use crate::scenario::Script;

/// What kind of credential a key is; decides which header may carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Credential {
    /// `sk-ant-api…` style, sent as `x-api-key`.
    ApiKey,
    /// `sk-ant-oat…`, sent as `Authorization: Bearer` with the OAuth beta flag.
    OAuth,
}

impl Credential {
    fn of(secret: &str) -> Credential {
        if secret.starts_with("sk-ant-oat") {
            Credential::OAuth
        } else {
            Credential::ApiKey
        }
    }
}

pub(crate) struct KeyState {
    pub(crate) name: String,
    pub(crate) credential: Credential,
    /// A stable UUID derived from the name, sent as `anthropic-organization-id`.
    pub(crate) organization_id: String,
    pub(crate) limits: Buckets,
    pub(crate) scenarios: Script,
    pub(crate) batches: Batches,
    pub(crate) tally: Tally,
}

pub(crate) struct Keys {
    by_secret: HashMap<String, Arc<KeyState>>,
    by_name: HashMap<String, Arc<KeyState>>,
    /// In configuration order, for statistics.
    ordered: Vec<Arc<KeyState>>,
}

impl Keys {
    pub(crate) fn new(keys: &[MockKey]) -> Keys {
        let mut by_secret = HashMap::new();
        let mut by_name = HashMap::new();
        let mut ordered = Vec::new();
        for key in keys {
            let state = Arc::new(KeyState {
                name: key.name.clone(),
                credential: Credential::of(&key.secret),
                organization_id: organization_id(&key.name),
                limits: Buckets::new(key.limits),
                scenarios: Script::default(),
                batches: Batches::default(),
                tally: Tally::default(),
            });
            by_secret.insert(key.secret.clone(), Arc::clone(&state));
            by_name.insert(key.name.clone(), Arc::clone(&state));
            ordered.push(state);
        }
        Keys {
            by_secret,
            by_name,
            ordered,
        }
    }

    pub(crate) fn by_secret(&self, secret: &str) -> Option<&Arc<KeyState>> {
        self.by_secret.get(secret)
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&Arc<KeyState>> {
        self.by_name.get(name)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<KeyState>> {
        self.ordered.iter()
    }
}

/// The organization id for requests without a known key.
pub(crate) const ANONYMOUS_ORGANIZATION: &str = "00000000-0000-4000-8000-000000000000";

/// A version-4-shaped UUID from an FNV-1a hash of `name`: stable across runs.
fn organization_id(name: &str) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in name.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    let hex = format!("{hash:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}
