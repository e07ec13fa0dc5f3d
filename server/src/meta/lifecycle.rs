//! Lifecycle rules as the metadata sees them: which versions a rule covers,
//! when they fall due, and the scan of a bucket's versions the lifecycle
//! worker plans from. Nothing here changes data: what is due is removed by
//! ordinary delete commands.

use super::MetaError;
use super::model::{LifecycleFilter, LifecycleRule, Tag};
use rusqlite::Connection;

pub const DAY_MS: i64 = 86_400_000;

impl LifecycleFilter {
    pub fn matches(&self, key: &str, size: u64, tags: &[Tag]) -> bool {
        key.starts_with(&self.prefix)
            && self.tags.iter().all(|t| tags.contains(t))
            && self.size_greater_than.is_none_or(|n| size > n)
            && self.size_less_than.is_none_or(|n| size < n)
    }
}

/// `days` lifecycle days after `since_ms`. With real days AWS rounds up to
/// the next midnight UTC; a shortened (debug) day is taken as it is.
pub fn due_ms(since_ms: i64, days: u32, day_ms: i64) -> i64 {
    let raw = since_ms.saturating_add(i64::from(days).saturating_mul(day_ms));
    if day_ms == DAY_MS {
        let rem = raw.rem_euclid(DAY_MS);
        if rem == 0 { raw } else { raw + (DAY_MS - rem) }
    } else {
        raw
    }
}

/// When a current version expires, and by which rule: the earliest of the
/// enabled rules that cover it.
pub fn current_expiry<'a>(
    rules: &'a [LifecycleRule],
    key: &str,
    size: u64,
    tags: &[Tag],
    modified_ms: i64,
    day_ms: i64,
) -> Option<(i64, &'a str)> {
    rules
        .iter()
        .filter(|r| r.enabled && r.filter.matches(key, size, tags))
        .filter_map(|r| {
            let due = match (r.expiration_days, r.expiration_date_ms) {
                (Some(days), _) => due_ms(modified_ms, days, day_ms),
                (None, Some(date)) => date,
                (None, None) => return None,
            };
            Some((due, r.id.as_str()))
        })
        .min_by_key(|(due, _)| *due)
}

/// One stored version, as the scan reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanVersion {
    pub id: i64,
    pub key: String,
    pub version_id: String,
    pub is_latest: bool,
    pub delete_marker: bool,
    pub size: u64,
    pub etag: String,
    pub modified_ms: i64,
    pub tags: Vec<Tag>,
}

/// What falls due for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// The current version expires (a delete marker where versioning is
    /// on): it must still be the one with this ETag.
    Current { etag: String },
    /// A noncurrent version, or a delete marker left alone, goes for good.
    Version { version_id: String },
}

/// What is due at `now_ms` among one key's versions (newest first).
pub fn due_for_key(
    rules: &[LifecycleRule],
    versions: &[ScanVersion],
    now_ms: i64,
    day_ms: i64,
) -> Vec<Due> {
    let mut due = Vec::new();
    let Some(latest) = versions.first().filter(|v| v.is_latest) else {
        return due;
    };
    if latest.delete_marker {
        let expired_marker = versions.len() == 1
            && rules.iter().any(|r| {
                r.enabled
                    && r.expired_object_delete_marker
                    && r.filter.tags.is_empty()
                    && r.filter.matches(&latest.key, 0, &[])
            });
        if expired_marker {
            due.push(Due::Version {
                version_id: latest.version_id.clone(),
            });
        }
    } else if current_expiry(
        rules,
        &latest.key,
        latest.size,
        &latest.tags,
        latest.modified_ms,
        day_ms,
    )
    .is_some_and(|(at, _)| now_ms >= at)
    {
        due.push(Due::Current {
            etag: latest.etag.clone(),
        });
    }
    // Version i became noncurrent when version i-1 was written.
    for (rank, pair) in versions.windows(2).enumerate() {
        let (newer, version) = (&pair[0], &pair[1]);
        let expires = rules.iter().any(|r| {
            let Some(days) = r.noncurrent_days else {
                return false;
            };
            r.enabled
                && r.filter.matches(&version.key, version.size, &version.tags)
                && r.newer_noncurrent_versions
                    .is_none_or(|keep| rank as u64 >= u64::from(keep))
                && now_ms >= due_ms(newer.modified_ms, days, day_ms)
        });
        if expires {
            due.push(Due::Version {
                version_id: version.version_id.clone(),
            });
        }
    }
    due
}

/// Up to `limit` versions of `bucket` after the cursor `(key, id)`, in key
/// order and newest first within a key (the `objects_by_age` index).
pub fn scan_versions(
    conn: &Connection,
    bucket: &str,
    after: Option<(&str, i64)>,
    limit: usize,
) -> Result<Vec<ScanVersion>, MetaError> {
    let (key, id) = after.unwrap_or(("", i64::MAX));
    let mut stmt = conn.prepare_cached(
        "SELECT id, key, version_id, is_latest, delete_marker, size, etag, modified_ms, meta
         FROM objects WHERE bucket = ?1 AND (key > ?2 OR (key = ?2 AND id < ?3))
         ORDER BY key, id DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map(
        rusqlite::params![bucket, key.as_bytes(), id, limit as i64],
        |r| {
            let key: Vec<u8> = r.get(1)?;
            let meta: String = r.get(8)?;
            Ok((
                ScanVersion {
                    id: r.get(0)?,
                    key: String::from_utf8_lossy(&key).into_owned(),
                    version_id: r.get(2)?,
                    is_latest: r.get(3)?,
                    delete_marker: r.get(4)?,
                    size: r.get::<_, i64>(5)? as u64,
                    etag: r.get(6)?,
                    modified_ms: r.get(7)?,
                    tags: Vec::new(),
                },
                meta,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (mut version, meta) = row?;
        version.tags = super::query::decode_meta(&meta)?.tags;
        out.push(version);
    }
    Ok(out)
}

/// Ids, keys and start times of `bucket`'s multipart uploads begun before
/// `before_ms`.
pub fn uploads_before(
    conn: &Connection,
    bucket: &str,
    before_ms: i64,
) -> Result<Vec<(String, String, i64)>, MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, key, initiated_ms FROM uploads WHERE bucket = ?1 AND initiated_ms < ?2",
    )?;
    let rows = stmt.query_map(rusqlite::params![bucket, before_ms], |r| {
        let key: Vec<u8> = r.get(1)?;
        Ok((
            r.get(0)?,
            String::from_utf8_lossy(&key).into_owned(),
            r.get(2)?,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The buckets that have lifecycle rules.
pub fn buckets_with_rules(conn: &Connection) -> Result<Vec<super::model::BucketRecord>, MetaError> {
    let mut stmt =
        conn.prepare_cached("SELECT name FROM buckets WHERE settings LIKE '%lifecycle%'")?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for name in names {
        if let Some(bucket) = super::query::get_bucket(conn, &name)?
            && bucket.settings.lifecycle.is_some()
        {
            out.push(bucket);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str) -> LifecycleRule {
        LifecycleRule {
            id: id.into(),
            enabled: true,
            ..Default::default()
        }
    }

    fn version(key: &str, id: i64, modified_ms: i64, latest: bool) -> ScanVersion {
        ScanVersion {
            id,
            key: key.into(),
            version_id: format!("v{id}"),
            is_latest: latest,
            delete_marker: false,
            size: 100,
            etag: format!("e{id}"),
            modified_ms,
            tags: Vec::new(),
        }
    }

    #[test]
    fn real_days_round_up_to_midnight_and_debug_days_do_not() {
        let noon = DAY_MS * 10 + DAY_MS / 2;
        assert_eq!(due_ms(noon, 1, DAY_MS), DAY_MS * 12);
        assert_eq!(due_ms(DAY_MS * 10, 1, DAY_MS), DAY_MS * 11);
        assert_eq!(due_ms(noon, 3, 10_000), noon + 30_000);
    }

    #[test]
    fn filters_need_prefix_tags_and_size() {
        let filter = LifecycleFilter {
            prefix: "logs/".into(),
            tags: vec![Tag {
                key: "t".into(),
                value: "1".into(),
            }],
            size_greater_than: Some(10),
            size_less_than: Some(1000),
            ..Default::default()
        };
        let tags = vec![
            Tag {
                key: "t".into(),
                value: "1".into(),
            },
            Tag {
                key: "u".into(),
                value: "2".into(),
            },
        ];
        assert!(filter.matches("logs/a", 100, &tags));
        assert!(!filter.matches("data/a", 100, &tags));
        assert!(!filter.matches("logs/a", 100, &tags[1..]));
        assert!(!filter.matches("logs/a", 10, &tags));
        assert!(!filter.matches("logs/a", 1000, &tags));
    }

    #[test]
    fn current_versions_expire_by_the_earliest_rule() {
        let mut a = rule("a");
        a.expiration_days = Some(3);
        let mut b = rule("b");
        b.expiration_date_ms = Some(20_000);
        let mut off = rule("off");
        off.enabled = false;
        off.expiration_days = Some(1);
        let rules = vec![a, b, off];
        assert_eq!(
            current_expiry(&rules, "k", 1, &[], 0, 1000),
            Some((3000, "a"))
        );
        assert_eq!(
            current_expiry(&rules, "k", 1, &[], 50_000, 1000),
            Some((20_000, "b"))
        );
        let v = [version("k", 1, 0, true)];
        assert!(due_for_key(&rules, &v, 2999, 1000).is_empty());
        assert_eq!(
            due_for_key(&rules, &v, 3000, 1000),
            vec![Due::Current { etag: "e1".into() }]
        );
    }

    #[test]
    fn noncurrent_versions_expire_after_their_successor_keeping_the_newest() {
        let mut r = rule("nc");
        r.noncurrent_days = Some(2);
        r.newer_noncurrent_versions = Some(1);
        let rules = vec![r];
        // Newest first: v4 current, v3 noncurrent since 4000, v2 since 3000…
        let versions = [
            version("k", 4, 4000, true),
            version("k", 3, 3000, false),
            version("k", 2, 2000, false),
            version("k", 1, 1000, false),
        ];
        // v3 is kept (the newest noncurrent); v2 due at 3000+2000, v1 at 2000+2000.
        let ids = |due: Vec<Due>| -> Vec<String> {
            due.into_iter()
                .map(|d| match d {
                    Due::Version { version_id } => version_id,
                    Due::Current { .. } => "current".into(),
                })
                .collect()
        };
        assert_eq!(ids(due_for_key(&rules, &versions, 4500, 1000)), vec!["v1"]);
        assert_eq!(
            ids(due_for_key(&rules, &versions, 9000, 1000)),
            vec!["v2", "v1"]
        );
    }

    #[test]
    fn a_lone_delete_marker_goes_when_asked() {
        let mut r = rule("m");
        r.expired_object_delete_marker = true;
        let mut marker = version("k", 2, 0, true);
        marker.delete_marker = true;
        assert_eq!(
            due_for_key(&[r.clone()], std::slice::from_ref(&marker), 0, 1000),
            vec![Due::Version {
                version_id: "v2".into()
            }]
        );
        let older = version("k", 1, 0, false);
        assert!(due_for_key(&[r], &[marker, older], 0, 1000).is_empty());
    }
}
