//! `audit:` in `kasetto.yaml` (SPEC 16): the sync gate, with Kasetto 3.12's keys in both of the
//! spellings it accepts (`fail-on` / `fail_on`, `fail-on-unverified` / `fail_on_unverified`).
//!
//! ```yaml
//! audit:
//!   fail-on: high              # low | medium | high | critical
//!   fail-on-unverified: false  # also fail when an item could not be checked
//! ```

use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A gate threshold, as Kasetto spells it: `low | medium | high | critical` (case-insensitive
/// here; `audit::Severity` adds `info` for findings that never gate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Threshold {
    Low,
    Medium,
    High,
    Critical,
}

impl Threshold {
    pub fn parse(s: &str) -> Option<Threshold> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Some(Threshold::Low),
            "medium" => Some(Threshold::Medium),
            "high" => Some(Threshold::High),
            "critical" => Some(Threshold::Critical),
            _ => None,
        }
    }
}

/// `audit:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    #[serde(
        default,
        rename = "fail-on",
        alias = "fail_on",
        deserialize_with = "threshold"
    )]
    fail_on: Option<Threshold>,
    #[serde(default, rename = "fail-on-unverified", alias = "fail_on_unverified")]
    fail_on_unverified: Option<bool>,
}

fn threshold<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Threshold>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s {
        None => Ok(None),
        Some(s) => Threshold::parse(&s).map(Some).ok_or_else(|| {
            de::Error::custom(format!(
                "audit level {:?} is not one of low, medium, high, critical",
                crate::escape::escape_line(&s)
            ))
        }),
    }
}

/// The gate the config sets. Unset: `kst sync` does not audit (unless `--audit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditConfig {
    pub fail_on: Option<Threshold>,
    pub fail_on_unverified: Option<bool>,
}

impl RawAudit {
    pub fn build(self) -> AuditConfig {
        AuditConfig {
            fail_on: self.fail_on,
            fail_on_unverified: self.fail_on_unverified,
        }
    }
}

impl AuditConfig {
    /// `child` over `parent` (`extends`): each key the child sets wins.
    pub fn merge(parent: Option<Self>, child: Option<Self>) -> Option<Self> {
        match (parent, child) {
            (p, None) => p,
            (None, c) => c,
            (Some(p), Some(c)) => Some(AuditConfig {
                fail_on: c.fail_on.or(p.fail_on),
                fail_on_unverified: c.fail_on_unverified.or(p.fail_on_unverified),
            }),
        }
    }
}
