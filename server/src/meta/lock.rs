//! Object lock rules (WORM): when a version may be removed or have its
//! retention changed. Pure functions of the version's settings, the time the
//! command was proposed at and whether the requester bypasses governance.

use super::model::{LockMode, ObjectMeta, Retention};
use super::{Refusal, Rule};

fn locked(message: &str) -> Refusal {
    Refusal::new(Rule::Locked, message)
}

/// The retention still in force at `now_ms`, if any.
pub fn active_retention(meta: &ObjectMeta, now_ms: i64) -> Option<Retention> {
    meta.retention.filter(|r| r.until_ms > now_ms)
}

/// May a version with these settings be deleted (or overwritten in place)?
/// A legal hold always blocks; COMPLIANCE retention blocks everyone;
/// GOVERNANCE retention blocks unless the requester may and does bypass it.
pub fn check_removal(
    meta: &ObjectMeta,
    now_ms: i64,
    bypass_governance: bool,
) -> Result<(), Refusal> {
    if meta.legal_hold == Some(true) {
        return Err(locked("Object is under legal hold and cannot be deleted."));
    }
    match active_retention(meta, now_ms) {
        Some(Retention {
            mode: LockMode::Compliance,
            ..
        }) => Err(locked(
            "Object is WORM protected (COMPLIANCE mode) and cannot be deleted.",
        )),
        Some(Retention {
            mode: LockMode::Governance,
            ..
        }) if !bypass_governance => Err(locked(
            "Object is WORM protected (GOVERNANCE mode) and cannot be deleted without bypassing governance retention.",
        )),
        _ => Ok(()),
    }
}

/// May the retention of a version change from `current` to `requested`?
/// Protection may always grow (later date, same mode; GOVERNANCE may become
/// COMPLIANCE only with bypass). COMPLIANCE can never shrink or go;
/// GOVERNANCE can shrink, change or go only with bypass.
pub fn check_retention_change(
    current: Option<&Retention>,
    requested: Option<&Retention>,
    now_ms: i64,
    bypass_governance: bool,
) -> Result<(), Refusal> {
    let Some(current) = current.filter(|r| r.until_ms > now_ms) else {
        return Ok(());
    };
    let extends = |r: &Retention| r.mode == current.mode && r.until_ms >= current.until_ms;
    match current.mode {
        LockMode::Compliance => {
            if requested.is_some_and(extends) {
                Ok(())
            } else {
                Err(locked(
                    "A COMPLIANCE retention can be extended, but not shortened, changed or removed.",
                ))
            }
        }
        LockMode::Governance => {
            if bypass_governance || requested.is_some_and(extends) {
                Ok(())
            } else {
                Err(locked(
                    "Shortening, changing or removing a GOVERNANCE retention requires bypassing governance retention.",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(retention: Option<(LockMode, i64)>, legal_hold: bool) -> ObjectMeta {
        ObjectMeta {
            retention: retention.map(|(mode, until_ms)| Retention { mode, until_ms }),
            legal_hold: Some(legal_hold),
            ..Default::default()
        }
    }

    const NOW: i64 = 1_000_000;

    #[test]
    fn removal_follows_mode_hold_and_bypass() {
        use LockMode::*;
        let cases = [
            (meta(None, false), false, true),
            (meta(Some((Governance, NOW + 1)), false), false, false),
            (meta(Some((Governance, NOW + 1)), false), true, true),
            (meta(Some((Compliance, NOW + 1)), false), true, false),
            // Expired retention no longer protects.
            (meta(Some((Compliance, NOW)), false), false, true),
            (meta(Some((Governance, NOW - 5)), false), false, true),
            // A legal hold blocks even with bypass and no retention.
            (meta(None, true), true, false),
            (meta(Some((Governance, NOW - 5)), true), true, false),
        ];
        for (i, (m, bypass, allowed)) in cases.into_iter().enumerate() {
            assert_eq!(check_removal(&m, NOW, bypass).is_ok(), allowed, "case {i}");
        }
        let refusal = check_removal(&meta(None, true), NOW, false).unwrap_err();
        assert_eq!(refusal.rule, Rule::Locked);
    }

    #[test]
    fn retention_can_grow_but_only_governance_can_shrink_with_bypass() {
        use LockMode::*;
        let r = |mode, until_ms| Retention { mode, until_ms };
        let gov = r(Governance, NOW + 100);
        let comp = r(Compliance, NOW + 100);
        let ok = |cur: Option<&Retention>, req: Option<&Retention>, bypass| {
            check_retention_change(cur, req, NOW, bypass).is_ok()
        };
        // Nothing set, or expired: anything goes.
        assert!(ok(None, Some(&comp), false));
        assert!(ok(Some(&r(Compliance, NOW - 1)), None, false));
        // GOVERNANCE
        assert!(ok(Some(&gov), Some(&r(Governance, NOW + 200)), false));
        assert!(ok(Some(&gov), Some(&gov), false));
        assert!(!ok(Some(&gov), Some(&r(Governance, NOW + 50)), false));
        assert!(ok(Some(&gov), Some(&r(Governance, NOW + 50)), true));
        assert!(!ok(Some(&gov), Some(&r(Compliance, NOW + 200)), false));
        assert!(ok(Some(&gov), Some(&r(Compliance, NOW + 200)), true));
        assert!(!ok(Some(&gov), None, false));
        assert!(ok(Some(&gov), None, true));
        // COMPLIANCE: extend only, bypass or not.
        assert!(ok(Some(&comp), Some(&r(Compliance, NOW + 200)), false));
        assert!(!ok(Some(&comp), Some(&r(Compliance, NOW + 50)), true));
        assert!(!ok(Some(&comp), Some(&r(Governance, NOW + 200)), true));
        assert!(!ok(Some(&comp), None, true));
    }
}
