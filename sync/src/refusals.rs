//! Counts of events a receiver refused to fold, by the rule that refused them (the rulebook's
//! `Refused::rule`). Node and hub each keep one; `/metrics` renders it as
//! `fusion_events_refused_total{rule}` (`fusion_hub_events_refused_total` at the hub). In
//! memory: a restart starts from zero, as Prometheus counters do.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Refusals(Mutex<BTreeMap<&'static str, u64>>);

impl Refusals {
    /// Counts one refusal under `rule`.
    pub fn count(&self, rule: &'static str) {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(rule).or_default() += 1;
    }

    /// Every rule's count so far.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// All refusals so far, whatever the rule.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
}
