//! The users this server knows: the root user and any configured others,
//! each with keys and a canonical owner identity.

use crate::acl::Owner;
use bleepstore_config::{Config, DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Secret};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub struct User {
    pub access_key: String,
    pub secret_key: Secret,
    pub owner: Owner,
    pub email: Option<String>,
}

pub struct Credentials {
    users: HashMap<String, User>,
    /// Signing keys per (access key, date, region): derived once a day.
    keys: Mutex<HashMap<(String, String, String), [u8; 32]>>,
    /// True when the root user fell back to the documented defaults.
    pub using_default_root: bool,
}

/// A canonical user id derived from an access key: 64 hex characters, like
/// the ids S3 shows, stable across restarts.
pub fn derive_owner_id(access_key: &str) -> String {
    super::sigv4::sha256_hex(format!("bleepstore-owner:{access_key}").as_bytes())
}

const MAX_CACHED_KEYS: usize = 4096;

impl Credentials {
    pub fn from_config(config: &Config) -> Self {
        let auth = &config.auth;
        let using_default_root = auth.access_key.is_none() || auth.secret_key.is_none();
        let root_access = auth
            .access_key
            .as_ref()
            .map(|s| s.expose().to_string())
            .unwrap_or_else(|| DEFAULT_ACCESS_KEY.to_string());
        let root_secret = auth
            .secret_key
            .clone()
            .unwrap_or_else(|| Secret::new(DEFAULT_SECRET_KEY));
        let mut users = HashMap::new();
        users.insert(
            root_access.clone(),
            User {
                owner: Owner {
                    id: auth
                        .owner_id
                        .clone()
                        .unwrap_or_else(|| derive_owner_id(&root_access)),
                    display_name: auth.display_name.clone(),
                },
                access_key: root_access,
                secret_key: root_secret,
                email: None,
            },
        );
        for user in &auth.users {
            let access = user.access_key.expose().to_string();
            users.insert(
                access.clone(),
                User {
                    owner: Owner {
                        id: user
                            .owner_id
                            .clone()
                            .unwrap_or_else(|| derive_owner_id(&access)),
                        display_name: user.display_name.clone(),
                    },
                    access_key: access,
                    secret_key: user.secret_key.clone(),
                    email: user.email.clone(),
                },
            );
        }
        Credentials {
            users,
            keys: Mutex::new(HashMap::new()),
            using_default_root,
        }
    }

    pub fn get(&self, access_key: &str) -> Option<&User> {
        self.users.get(access_key)
    }

    pub fn by_owner_id(&self, id: &str) -> Option<&User> {
        self.users.values().find(|u| u.owner.id == id)
    }

    pub fn by_email(&self, email: &str) -> Option<&User> {
        self.users.values().find(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
    }

    pub fn signing_key(&self, user: &User, date: &str, region: &str, service: &str) -> [u8; 32] {
        let cache_key = (
            user.access_key.clone(),
            date.to_string(),
            region.to_string(),
        );
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = keys.get(&cache_key) {
            return *key;
        }
        let key = super::sigv4::signing_key(user.secret_key.expose(), date, region, service);
        if keys.len() >= MAX_CACHED_KEYS {
            keys.clear();
        }
        keys.insert(cache_key, key);
        key
    }
}
