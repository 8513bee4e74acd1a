//! The injected faults of the test API (`/_optimist/faults`): ordered rules, each matching
//! requests (or `_bulk` items) by what they are, and an action for the ones it fires on. Rules
//! are looked at in the order they were made; the first whose match holds, whose `after` is
//! used up, whose draw succeeds and that has firings left, fires. Draws are a function of the
//! rule's seed and its match number, so a run replays exactly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde_json::Value;

/// The most rules at once.
pub(crate) const RULES_MAX: usize = 256;

/// What a request or an item is, as rules match it.
#[derive(Debug, Default)]
pub(crate) struct Facts<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    /// `index`, `create`, `update`, `delete`, `get`, `mget`, `bulk`, `count`, ...
    pub(crate) op: &'a str,
    pub(crate) index: Option<&'a str>,
    pub(crate) id: Option<&'a str>,
    pub(crate) opaque_id: Option<&'a str>,
    /// A `_bulk` item, not a whole request.
    pub(crate) item: bool,
}

/// What a rule matches; `None` (or an empty list) matches anything.
#[derive(Clone, Debug, Default)]
pub(crate) struct Match {
    pub(crate) method: Option<String>,
    /// A path pattern, `*` a wildcard.
    pub(crate) path: Option<String>,
    /// An index name or pattern.
    pub(crate) index: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) ops: Vec<String>,
    pub(crate) opaque_id: Option<String>,
}

impl Match {
    fn holds(&self, facts: &Facts<'_>) -> bool {
        let pattern = |p: &Option<String>, v: Option<&str>| {
            p.as_deref()
                .is_none_or(|p| v.is_some_and(|v| super::simple_match::matches(p, v)))
        };
        let exact = |p: &Option<String>, v: Option<&str>| p.as_deref().is_none_or(|p| v == Some(p));
        let op = self.ops.is_empty() || self.ops.iter().any(|o| o == "any" || o == facts.op);
        op && exact(&self.method, Some(facts.method))
            && pattern(&self.path, Some(facts.path))
            && pattern(&self.index, facts.index)
            && exact(&self.id, facts.id)
            && exact(&self.opaque_id, facts.opaque_id)
    }
}

/// What a rule does when it fires.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Action {
    /// The write refused with a version conflict, after a real write to its document.
    VersionConflict,
    /// A real write of `doc` (merged) to the document, then the request runs.
    InterleaveWrite { doc: Value },
    /// An error answer instead of running: for the whole request, or for `_bulk` items.
    Status {
        status: u16,
        error: Option<String>,
        item: bool,
        retry_after: Option<u64>,
        /// A raw body (what a proxy answers), and its content type.
        body: Option<(String, String)>,
    },
    /// No answer at all: the connection closed (or held, then closed), after the request ran
    /// or instead of running it.
    ResponseLost {
        after_commit: bool,
        hang_ms: Option<u64>,
    },
    /// The answer late: before the request runs, or after.
    Delay {
        ms: u64,
        jitter_ms: u64,
        after_commit: bool,
    },
}

impl Action {
    /// For the actions made of a real write to the document: what that write merges in, and
    /// whether the request is then refused with the conflict it met.
    pub(crate) fn interleaved(&self) -> Option<(Value, bool)> {
        match self {
            Action::VersionConflict => Some((Value::Object(Default::default()), true)),
            Action::InterleaveWrite { doc } => Some((doc.clone(), false)),
            _ => None,
        }
    }

    /// Whether it may fire on `facts`: a document's conflict or write in between on a
    /// single-document write or a `_bulk` item; a `status` of scope `item` on items only;
    /// the others on whole requests only.
    fn fits(&self, facts: &Facts<'_>) -> bool {
        match self {
            Action::VersionConflict | Action::InterleaveWrite { .. } => {
                facts.id.is_some() && matches!(facts.op, "index" | "create" | "update" | "delete")
            }
            Action::Status { item, .. } => *item == facts.item,
            Action::ResponseLost { .. } | Action::Delay { .. } => !facts.item,
        }
    }
}

/// One rule, as made, and how it has fared.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub(crate) id: String,
    pub(crate) matching: Match,
    pub(crate) action: Action,
    /// Firings left; `None`: until deleted.
    pub(crate) remaining: Option<u64>,
    /// Matches let through before it may fire.
    pub(crate) after: u64,
    pub(crate) probability: f64,
    pub(crate) seed: u64,
    pub(crate) expires: Option<Instant>,
    /// The rule's text as given, for `GET`.
    pub(crate) shown: Value,
    pub(crate) matched: u64,
    pub(crate) fired: u64,
}

/// A fired rule: its id and action, and its match number (for seeded jitter).
#[derive(Clone, Debug)]
pub(crate) struct Fired {
    pub(crate) id: String,
    pub(crate) action: Action,
    pub(crate) draw: u64,
}

/// The rules of one server.
#[derive(Default)]
pub(crate) struct Faults {
    rules: Mutex<Vec<Rule>>,
    /// Whether there is any rule: a request on a server without faults takes no lock.
    any: AtomicBool,
    made: Mutex<u64>,
}

impl Faults {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Vec<Rule>> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The id for a rule made without one: `fault-<n>`.
    pub(crate) fn next_id(&self) -> String {
        let mut made = self.made.lock().unwrap_or_else(PoisonError::into_inner);
        *made += 1;
        format!("fault-{made}")
    }

    /// Whether there is no rule at all (a lock-free look, before a request's facts are
    /// gathered).
    pub(crate) fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }

    /// Call after changing the rules.
    pub(crate) fn changed(&self, rules: &[Rule]) {
        self.any.store(!rules.is_empty(), Ordering::Release);
    }

    /// The rule that fires on `facts`, if any, its counts moved.
    pub(crate) fn fire(&self, facts: &Facts<'_>) -> Option<Fired> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let mut rules = self.lock();
        let now = Instant::now();
        rules.retain(|r| r.expires.is_none_or(|at| at > now));
        let fired = rules.iter_mut().find_map(|rule| rule.try_fire(facts));
        self.changed(&rules);
        fired
    }
}

impl Rule {
    fn try_fire(&mut self, facts: &Facts<'_>) -> Option<Fired> {
        if !self.action.fits(facts) || !self.matching.holds(facts) {
            return None;
        }
        if self.remaining == Some(0) {
            return None;
        }
        self.matched += 1;
        if self.matched <= self.after {
            return None;
        }
        let draw = mix(self.seed ^ self.matched);
        let chance = (draw >> 11) as f64 / (1u64 << 53) as f64;
        if chance >= self.probability {
            return None;
        }
        self.fired += 1;
        if let Some(left) = &mut self.remaining {
            *left -= 1;
        }
        Some(Fired {
            id: self.id.clone(),
            action: self.action.clone(),
            draw,
        })
    }
}

/// SplitMix64's finaliser: a well-spread number from any.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, matching: Match, times: Option<u64>) -> Rule {
        Rule {
            id: id.into(),
            matching,
            action: Action::VersionConflict,
            remaining: times,
            after: 0,
            probability: 1.0,
            seed: 7,
            expires: None,
            shown: Value::Null,
            matched: 0,
            fired: 0,
        }
    }

    fn facts<'a>(index: &'a str, id: &'a str, opaque: Option<&'a str>) -> Facts<'a> {
        Facts {
            method: "POST",
            path: "/orders/_update/42",
            op: "update",
            index: Some(index),
            id: Some(id),
            opaque_id: opaque,
            item: false,
        }
    }

    #[test]
    fn the_first_rule_that_holds_fires_its_count_then_the_next() {
        let faults = Faults::default();
        let on_42 = Match {
            index: Some("ord*".into()),
            id: Some("42".into()),
            ops: vec!["update".into()],
            ..Match::default()
        };
        let mut first = rule("a", on_42, Some(2));
        first.after = 1;
        let scoped = Match {
            opaque_id: Some("test-17".into()),
            ..Match::default()
        };
        *faults.lock() = vec![first, rule("b", scoped, None)];
        faults.changed(&faults.lock());
        let fired = |f: &Facts<'_>| faults.fire(f).map(|f| f.id);
        // The first match is let through (`after`), the next two fire, then it is spent.
        assert_eq!(fired(&facts("orders", "42", None)), None);
        assert_eq!(fired(&facts("orders", "42", None)).as_deref(), Some("a"));
        assert_eq!(fired(&facts("orders", "42", None)).as_deref(), Some("a"));
        assert_eq!(fired(&facts("orders", "42", None)), None);
        assert_eq!(fired(&facts("users", "42", None)), None);
        // Scoped by X-Opaque-Id: only that test's requests.
        assert_eq!(
            fired(&facts("x", "1", Some("test-17"))).as_deref(),
            Some("b")
        );
        assert_eq!(fired(&facts("x", "1", Some("test-18"))), None);
        // A spent rule counts no more matches.
        let rules = faults.lock();
        assert_eq!(
            (rules[0].matched, rules[0].fired, rules[0].remaining),
            (3, 2, Some(0))
        );
    }

    #[test]
    fn a_probability_draws_the_same_in_every_run_of_a_seed() {
        let outcomes = || {
            let faults = Faults::default();
            let mut r = rule("p", Match::default(), None);
            r.probability = 0.3;
            *faults.lock() = vec![r];
            faults.changed(&faults.lock());
            (0..1000)
                .map(|_| faults.fire(&facts("i", "1", None)).is_some())
                .collect::<Vec<_>>()
        };
        let first = outcomes();
        assert_eq!(first, outcomes());
        let hits = first.iter().filter(|h| **h).count();
        assert!((230..370).contains(&hits), "{hits} of 1000 at 0.3");
    }
}
