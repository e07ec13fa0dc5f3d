use crate::{Config, Secret};
use figment::Figment;
use figment::providers::Serialized;
use std::path::{Path, PathBuf};

/// Environment variables `BLEEPSTORE_<SECTION>_<FIELD>` override the file:
/// `BLEEPSTORE_SERVER_REGION=eu-west-1` sets `server.region`, and
/// `BLEEPSTORE_SERVER_DOMAINS=[s3.example.com]` a list.
pub const ENV_PREFIX: &str = "BLEEPSTORE_";

/// Section names that environment variables may address. Anything else under
/// the prefix (`BLEEPSTORE_CONFIG`, the flag for the file itself) is left alone.
const SECTIONS: &[&str] = &[
    "server",
    "storage",
    "metadata",
    "auth",
    "logging",
    "limits",
    "multipart",
    "cluster",
    "encryption",
    "lifecycle",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("invalid configuration: {field}: {message}")]
    Invalid { field: String, message: String },
    #[error("cannot read {field} from {path}: {source}")]
    SecretFile {
        field: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Values set by command-line flags, the highest layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides(serde_json::Map<String, serde_json::Value>);

impl Overrides {
    /// Sets the dotted `path` (`server.s3_listen`) to `value`.
    pub fn set(&mut self, path: &str, value: impl Into<serde_json::Value>) -> &mut Self {
        let mut node = &mut self.0;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.insert(part.to_string(), value.into());
                break;
            }
            let entry = node
                .entry(part.to_string())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if !entry.is_object() {
                *entry = serde_json::Value::Object(Default::default());
            }
            node = match entry {
                serde_json::Value::Object(map) => map,
                _ => unreachable!("replaced by an object above"),
            };
        }
        self
    }
}

/// Loads defaults → `file` → environment → `overrides`, checks the result and
/// reads secrets referenced by `*_file` fields.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &Overrides,
) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let value: serde_json::Value =
            serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::Syntax {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        // An empty file parses as null: treat it as "no settings".
        if !value.is_null() {
            if !value.is_object() {
                return Err(ConfigError::Syntax {
                    path: path.to_path_buf(),
                    message: "the top level must be a mapping of sections".into(),
                });
            }
            figment = figment.merge(Serialized::defaults(value));
        }
    }
    let env_vars: Vec<(String, String)> = env.into_iter().collect();
    let env = env_layer(env_vars.clone());
    figment = figment.merge(Serialized::defaults(serde_json::Value::Object(
        env.0.clone(),
    )));
    figment = figment.merge(Serialized::defaults(serde_json::Value::Object(
        overrides.0.clone(),
    )));
    let mut config: Config = figment
        .extract_lossy()
        .map_err(|e| describe_figment_error(e, &env))?;
    resolve_secret_files(&mut config, &env_vars)?;
    config.validate()?;
    Ok(config)
}

/// The environment layer as a nested map. Values stay strings (lossy
/// extraction turns them into numbers or booleans where a field needs one, so
/// a numeric-looking secret stays text); `[…]` and `{…}` are parsed as YAML so
/// lists and maps can be set too.
fn env_layer(vars: Vec<(String, String)>) -> Overrides {
    let mut layer = Overrides::default();
    for (name, value) in vars {
        let Some(key) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        let Some((section, field)) = key.split_once('_') else {
            continue;
        };
        if !SECTIONS.contains(&section) || field.is_empty() {
            continue;
        }
        let trimmed = value.trim_start();
        let parsed = if trimmed.starts_with('[') || trimmed.starts_with('{') {
            serde_yaml_ng::from_str(&value).unwrap_or(serde_json::Value::String(value))
        } else {
            serde_json::Value::String(value)
        };
        layer.set(&format!("{section}.{field}"), parsed);
    }
    layer
}

fn describe_figment_error(error: figment::Error, env: &Overrides) -> ConfigError {
    let mut field: Vec<&str> = error.path.iter().map(String::as_str).collect();
    if field.first() == Some(&"default") {
        field.remove(0);
    }
    let from_env = field.len() >= 2
        && env
            .0
            .get(field[0])
            .and_then(|section| section.get(field[1]))
            .is_some();
    let source = if from_env {
        format!(" (from environment variable {})", env_name(&field[..2]))
    } else {
        String::new()
    };
    ConfigError::Invalid {
        field: if field.is_empty() {
            "(top level)".into()
        } else {
            field.join(".")
        },
        message: format!("{}{source}", error.kind),
    }
}

fn env_name(field: &[&str]) -> String {
    format!("{ENV_PREFIX}{}", field.join("_").to_ascii_uppercase())
}

fn read_secret(field: &str, path: &Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        field: field.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Secret::new(text.trim_end_matches(['\r', '\n'])))
}

fn resolve_secret_files(config: &mut Config, env: &[(String, String)]) -> Result<(), ConfigError> {
    let auth = &mut config.auth;
    if let Some(path) = &auth.access_key_file {
        auth.access_key = Some(read_secret("auth.access_key_file", path)?);
    }
    if let Some(path) = &auth.secret_key_file {
        auth.secret_key = Some(read_secret("auth.secret_key_file", path)?);
    }
    if let Some(path) = &auth.admin_token_file {
        auth.admin_token = Some(read_secret("auth.admin_token_file", path)?);
    }
    if let Some(path) = &config.cluster.secret_file {
        config.cluster.secret = Some(read_secret("cluster.secret_file", path)?);
    }
    resolve_backend_secrets(&mut config.storage, env)?;
    for (i, key) in config.encryption.keys.iter_mut().enumerate() {
        resolve_one(
            &format!("encryption.keys[{i}]"),
            &mut key.value,
            key.file.as_deref(),
            key.env.as_deref(),
            env,
        )?;
    }
    Ok(())
}

/// Resolves `file` and `env` of every backend credential into `value`.
fn resolve_backend_secrets(
    storage: &mut crate::StorageConfig,
    env: &[(String, String)],
) -> Result<(), ConfigError> {
    let mut sections: Vec<(String, Vec<(&'static str, &mut crate::SecretSource)>)> = Vec::new();
    if let Some(c) = &mut storage.aws {
        sections.push(("storage.aws".into(), c.secrets_mut()));
    }
    if let Some(c) = &mut storage.azure {
        sections.push(("storage.azure".into(), c.secrets_mut()));
    }
    if let Some(c) = &mut storage.gcs {
        sections.push(("storage.gcs".into(), c.secrets_mut()));
    }
    for (name, spec) in &mut storage.backends {
        sections.push((format!("storage.backends.{name}"), spec.secrets_mut()));
    }
    for (prefix, secrets) in sections {
        for (name, secret) in secrets {
            let field = format!("{prefix}.{name}");
            if secret.value.is_none() && secret.file.is_none() && secret.env.is_none() {
                return Err(ConfigError::Invalid {
                    field,
                    message: "give exactly one of value, file or env".into(),
                });
            }
            resolve_one(
                &field,
                &mut secret.value,
                secret.file.as_deref(),
                secret.env.as_deref(),
                env,
            )?;
        }
    }
    Ok(())
}

/// Fills `value` from the file or environment variable named; more than one
/// source for the same secret is an error.
fn resolve_one(
    field: &str,
    value: &mut Option<Secret>,
    file: Option<&Path>,
    env_name: Option<&str>,
    env: &[(String, String)],
) -> Result<(), ConfigError> {
    let sources = [value.is_some(), file.is_some(), env_name.is_some()];
    if sources.iter().filter(|s| **s).count() > 1 {
        return Err(ConfigError::Invalid {
            field: field.to_string(),
            message: "give exactly one of value, file or env".into(),
        });
    }
    if let Some(path) = file {
        *value = Some(read_secret(&format!("{field}.file"), path)?);
    }
    if let Some(name) = env_name {
        let found = env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| ConfigError::Invalid {
                field: format!("{field}.env"),
                message: format!("environment variable {name} is not set"),
            })?;
        *value = Some(Secret::new(found));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backend, LogFormat};

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("bleepstore-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn no_file_gives_defaults() {
        let config = load(None, Vec::new(), &Overrides::default()).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.server.s3_listen.port(), 9000);
        assert_eq!(config.server.ops_listen.port(), 9001);
        assert_eq!(config.storage.backend, Backend::Local);
        assert_eq!(config.server.region, "us-east-1");
    }

    #[test]
    fn layers_file_env_and_flags_in_order() {
        let dir = temp_dir("layers");
        let file = write(
            &dir,
            "c.yaml",
            "server:\n  region: eu-west-1\n  domains: [s3.local]\nstorage:\n  backend: memory\nlogging:\n  level: debug\n",
        );
        let mut flags = Overrides::default();
        flags.set("logging.level", "warn");
        let config = load(
            Some(&file),
            env(&[
                ("BLEEPSTORE_LOGGING_FORMAT", "json"),
                ("BLEEPSTORE_LIMITS_MAX_OBJECT_SIZE", "10MiB"),
                ("BLEEPSTORE_AUTH_ACCESS_KEY", "12345"),
            ]),
            &flags,
        )
        .unwrap();
        assert_eq!(config.server.region, "eu-west-1");
        assert_eq!(config.server.domains, vec!["s3.local".to_string()]);
        assert_eq!(config.storage.backend, Backend::Memory);
        assert_eq!(config.logging.format, LogFormat::Json);
        assert_eq!(config.logging.level, "warn");
        assert_eq!(config.limits.max_object_size.0, 10 << 20);
        // A numeric-looking key stays a string.
        assert_eq!(config.auth.access_key.unwrap().expose(), "12345");
    }

    #[test]
    fn cluster_maps_are_keyed_by_node_id_from_yaml_and_env() {
        let dir = temp_dir("cluster");
        let file = write(
            &dir,
            "c.yaml",
            "cluster:\n  enabled: true\n  secret: s\n  node_id: 1\n  peers:\n    - {id: 0, address: 127.0.0.1:9001}\n    - {id: 1, address: 127.0.0.1:9011}\n  dial:\n    0: 127.0.0.1:7000\n",
        );
        let config = load(Some(&file), Vec::new(), &Overrides::default()).unwrap();
        assert_eq!(
            config.cluster.dial.get(&0).map(String::as_str),
            Some("127.0.0.1:7000")
        );
        let config = load(
            Some(&file),
            env(&[("BLEEPSTORE_CLUSTER_DIAL", "{\"0\": 127.0.0.1:7100}")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            config.cluster.dial.get(&0).map(String::as_str),
            Some("127.0.0.1:7100")
        );
        let file = write(
            &dir,
            "d.yaml",
            "cluster:\n  dial:\n    first: 127.0.0.1:7000\n",
        );
        let text = load(Some(&file), Vec::new(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("cluster.dial") && text.contains("not a node id"),
            "{text}"
        );
    }

    #[test]
    fn backends_classes_and_credential_sources_load() {
        let dir = temp_dir("backends");
        let key_file = write(&dir, "key", "file-secret\n");
        let text = format!(
            "storage:\n  backend: aws\n  aws:\n    bucket: blobs\n    access_key_id: {{env: TEST_AWS_KEY}}\n    secret_access_key: {{file: {}}}\n  backends:\n    archive:\n      type: gcs\n      bucket: cold\n    db:\n      type: sqlite\n  classes:\n    GLACIER: archive\n    STANDARD_IA: default\n",
            key_file.display()
        );
        let file = write(&dir, "c.yaml", &text);
        let env = env(&[("TEST_AWS_KEY", "env-key")]);
        let config = load(Some(&file), env, &Overrides::default()).unwrap();
        let aws = config.storage.aws.as_ref().unwrap();
        assert_eq!(
            aws.access_key_id.as_ref().unwrap().expose(),
            Some("env-key")
        );
        assert_eq!(
            aws.secret_access_key.as_ref().unwrap().expose(),
            Some("file-secret")
        );
        assert_eq!(config.storage.backends["archive"].kind(), "gcs");
        assert_eq!(config.storage.backends["db"].kind(), "sqlite");
        assert!(config.storage.main_backend().unwrap().is_shared());
    }

    #[test]
    fn bad_backend_settings_name_their_field() {
        let dir = temp_dir("bad-backends");
        for (text, field) in [
            ("storage:\n  backend: aws\n", "storage.aws"),
            (
                "storage:\n  backend: aws\n  aws: {bucket: ''}\n",
                "storage.aws.bucket",
            ),
            (
                "storage:\n  backends:\n    Bad_Name: {type: memory}\n",
                "storage.backends.Bad_Name",
            ),
            (
                "storage:\n  classes: {GLACIER: nowhere}\n",
                "storage.classes.GLACIER",
            ),
            (
                "storage:\n  backends: {a: {type: memory}}\n  classes: {FROZEN: a}\n",
                "storage.classes.FROZEN",
            ),
            (
                "storage:\n  backends: {a: {type: azure, container: ''}}\n",
                "storage.backends.a.container",
            ),
        ] {
            let file = write(&dir, "c.yaml", text);
            let err = load(Some(&file), Vec::new(), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains(field), "{text}: {err}");
        }
    }

    #[test]
    fn a_bad_value_names_its_field() {
        let dir = temp_dir("bad");
        let file = write(&dir, "c.yaml", "storage:\n  backend: floppy\n");
        let err = load(Some(&file), Vec::new(), &Overrides::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("storage.backend"), "{text}");

        let file = write(&dir, "d.yaml", "server:\n  s3_listen: not-an-address\n");
        let text = load(Some(&file), Vec::new(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(text.contains("server.s3_listen"), "{text}");

        let file = write(&dir, "e.yaml", "server:\n  regoin: x\n");
        let text = load(Some(&file), Vec::new(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(text.contains("regoin"), "{text}");

        let file = write(&dir, "f.yaml", "multipart:\n  min_part_size: 0\n");
        let text = load(Some(&file), Vec::new(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(text.contains("multipart.min_part_size"), "{text}");
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = temp_dir("secrets");
        let key = write(&dir, "key", "AKIAFILE\n");
        let secret = write(&dir, "secret", "s3cr3t\n");
        let file = write(
            &dir,
            "c.yaml",
            &format!(
                "auth:\n  access_key_file: {}\n  secret_key_file: {}\n",
                key.display(),
                secret.display()
            ),
        );
        let config = load(Some(&file), Vec::new(), &Overrides::default()).unwrap();
        assert_eq!(config.auth.access_key.unwrap().expose(), "AKIAFILE");
        assert_eq!(config.auth.secret_key.unwrap().expose(), "s3cr3t");
        let missing = write(
            &dir,
            "m.yaml",
            "auth:\n  secret_key_file: /nonexistent/secret\n",
        );
        let text = load(Some(&missing), Vec::new(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(text.contains("auth.secret_key_file"), "{text}");
    }

    #[test]
    fn cluster_mode_requires_identity() {
        let mut flags = Overrides::default();
        flags.set("cluster.enabled", true);
        let text = load(None, Vec::new(), &flags).unwrap_err().to_string();
        assert!(text.contains("cluster."), "{text}");
    }

    #[test]
    fn env_errors_name_the_variable() {
        let text = load(
            None,
            env(&[("BLEEPSTORE_SERVER_SHUTDOWN_TIMEOUT_SECS", "soon")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(text.contains("server.shutdown_timeout_secs"), "{text}");
        assert!(
            text.contains("BLEEPSTORE_SERVER_SHUTDOWN_TIMEOUT_SECS"),
            "{text}"
        );
        let config = load(
            None,
            env(&[
                ("BLEEPSTORE_SERVER_SHUTDOWN_TIMEOUT_SECS", "5"),
                ("BLEEPSTORE_SERVER_DOMAINS", "[a.example, b.example]"),
                ("BLEEPSTORE_CONFIG", "/ignored.yaml"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(config.server.shutdown_timeout_secs, 5);
        assert_eq!(config.server.domains.len(), 2);
    }

    #[test]
    fn keyring_keys_come_from_values_files_and_env() {
        let dir = temp_dir("keyring");
        let hex_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let file_key = write(&dir, "k2", "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=\n");
        let file = write(
            &dir,
            "c.yaml",
            &format!(
                "encryption:\n  default_key: k2\n  keys:\n    - id: k1\n      value: {hex_key}\n    - id: k2\n      file: {}\n    - id: k3\n      env: MY_KEY\n",
                file_key.display()
            ),
        );
        let config = load(
            Some(&file),
            env(&[("MY_KEY", "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=")]),
            &Overrides::default(),
        )
        .unwrap();
        let keys = &config.encryption.keys;
        assert_eq!(
            crate::decode_master_key(keys[0].value.as_ref().unwrap().expose()).unwrap()[1],
            0x11
        );
        assert_eq!(
            crate::decode_master_key(keys[1].value.as_ref().unwrap().expose()).unwrap(),
            *b"01234567890123456789012345678901"
        );
        assert!(keys[2].value.is_some());
        assert_eq!(config.encryption.effective_default_key(), Some("k2"));
        assert!(config.encryption.require_tls_for_sse_c);

        for (name, yaml, field) in [
            (
                "short",
                "encryption:\n  keys:\n    - id: a\n      value: c2hvcnQ=\n",
                "encryption.keys[0].value",
            ),
            (
                "nodefault",
                &format!(
                    "encryption:\n  keys:\n    - id: a\n      value: {hex_key}\n    - id: b\n      value: {hex_key}\n"
                ),
                "encryption.default_key",
            ),
            (
                "unknown",
                &format!(
                    "encryption:\n  default_key: zz\n  keys:\n    - id: a\n      value: {hex_key}\n"
                ),
                "encryption.default_key",
            ),
            (
                "dup",
                &format!(
                    "encryption:\n  default_key: a\n  keys:\n    - id: a\n      value: {hex_key}\n    - id: a\n      value: {hex_key}\n"
                ),
                "encryption.keys[1].id",
            ),
            (
                "noenv",
                "encryption:\n  keys:\n    - id: a\n      env: NOT_SET_ANYWHERE\n",
                "encryption.keys[0].env",
            ),
            (
                "none",
                "encryption:\n  keys:\n    - id: a\n",
                "encryption.keys[0]",
            ),
        ] {
            let path = write(&dir, &format!("{name}.yaml"), yaml);
            let text = load(Some(&path), Vec::new(), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(text.contains(field), "{name}: {text}");
        }
    }
}
