//! The anomaly rules and the detector that applies them: a pure fold over observations, in
//! the order their source holds them, timed by the times the source recorded. The same
//! observations and thresholds always raise the same alerts, whatever the wall clock says, so
//! an auditor replaying the access chain can reproduce every alert.
//!
//! Each rule counts observations about one subject (a principal, an account or a client
//! address) within a sliding window, and trips when the count reaches its threshold. A rule
//! that has tripped for a subject stays quiet for that subject for one window, so a burst
//! raises one alert, not one per observation. Memory is bounded: a window keeps at most its
//! threshold of observations, and subjects quiet for longer than their window are forgotten.

use std::collections::{HashMap, VecDeque};

use super::hours::WorkingHours;
use crate::monitoring::alert_log::{AlertRaised, AlertSource, MAX_MATTERS, Severity, alert_id};

/// One anomaly rule. The names are stable (events, metrics, configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// One user reading many distinct matters in a short time.
    ManyMatters,
    /// A user reading client data outside the configured working hours.
    OffHours,
    /// Repeated failed logins against one account or from one address.
    FailedLogins,
    /// Attempts on matters a wall screens the principal from.
    WalledAttempts,
    /// Break-glass access to a matter.
    BreakGlass,
    /// Many exports (subject-access exports, evidence bundles, document downloads).
    BulkExports,
    /// An API client's calls refused (rate limit, scope, walls) in a burst.
    ApiClientErrors,
}

impl Rule {
    pub const ALL: [Rule; 7] = [
        Rule::ManyMatters,
        Rule::OffHours,
        Rule::FailedLogins,
        Rule::WalledAttempts,
        Rule::BreakGlass,
        Rule::BulkExports,
        Rule::ApiClientErrors,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ManyMatters => "many_matters",
            Rule::OffHours => "off_hours",
            Rule::FailedLogins => "failed_logins",
            Rule::WalledAttempts => "walled_attempts",
            Rule::BreakGlass => "break_glass",
            Rule::BulkExports => "bulk_exports",
            Rule::ApiClientErrors => "api_client_errors",
        }
    }

    pub fn parse(text: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.as_str() == text)
    }

    pub fn severity(self) -> Severity {
        match self {
            Rule::OffHours | Rule::ApiClientErrors => Severity::Medium,
            _ => Severity::High,
        }
    }

    /// Where the rule's observations come from.
    pub fn source(self) -> AlertSource {
        match self {
            Rule::FailedLogins => AlertSource::Log,
            _ => AlertSource::AccessChain,
        }
    }

    fn summary(self, count: u64, window_secs: u64) -> String {
        let minutes = window_secs.div_ceil(60);
        match self {
            Rule::ManyMatters => format!("{count} distinct matters read within {minutes} min"),
            Rule::OffHours => format!("{count} reads of client data outside working hours"),
            Rule::FailedLogins => format!("{count} failed logins within {minutes} min"),
            Rule::WalledAttempts => {
                format!("{count} attempts on walled matters within {minutes} min")
            }
            Rule::BreakGlass => format!("break-glass access used {count} times"),
            Rule::BulkExports => format!("{count} exports within {minutes} min"),
            Rule::ApiClientErrors => {
                format!("{count} refused API-client calls within {minutes} min")
            }
        }
    }
}

/// When a rule trips: `count` observations within `window_secs`. A count of 0 turns the rule
/// off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub count: u32,
    pub window_secs: u64,
}

impl Threshold {
    pub const fn new(count: u32, window_secs: u64) -> Self {
        Threshold { count, window_secs }
    }

    pub fn is_off(self) -> bool {
        self.count == 0
    }

    fn window_ms(self) -> i64 {
        i64::try_from(self.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

/// The rules' thresholds and working hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    thresholds: [Threshold; 7],
    /// Without working hours the off-hours rule is off.
    pub working_hours: Option<WorkingHours>,
}

impl Default for Thresholds {
    /// 25 matters in 10 minutes; any read off hours (once working hours are set) per hour;
    /// 5 failed logins in 10 minutes; any walled attempt; any break-glass use; 20 exports in
    /// 10 minutes; 20 refused API-client calls in 5 minutes.
    fn default() -> Self {
        let mut thresholds = [Threshold::new(1, 3600); 7];
        let mut set = |rule: Rule, threshold| thresholds[rule as usize] = threshold;
        set(Rule::ManyMatters, Threshold::new(25, 600));
        set(Rule::OffHours, Threshold::new(1, 3600));
        set(Rule::FailedLogins, Threshold::new(5, 600));
        set(Rule::WalledAttempts, Threshold::new(1, 3600));
        set(Rule::BreakGlass, Threshold::new(1, 3600));
        set(Rule::BulkExports, Threshold::new(20, 600));
        set(Rule::ApiClientErrors, Threshold::new(20, 300));
        Thresholds {
            thresholds,
            working_hours: None,
        }
    }
}

impl Thresholds {
    pub fn of(&self, rule: Rule) -> Threshold {
        self.thresholds[rule as usize]
    }

    pub fn set(&mut self, rule: Rule, threshold: Threshold) {
        self.thresholds[rule as usize] = threshold;
    }

    /// Whether `rule` can trip at all.
    pub fn is_on(&self, rule: Rule) -> bool {
        !self.of(rule).is_off() && (rule != Rule::OffHours || self.working_hours.is_some())
    }
}

/// One thing a source recorded that a rule counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub rule: Rule,
    /// `user:<id>`, `api_client:<id>`, `account:<user id>` or `address:<address>`.
    pub subject: String,
    /// When the source recorded it, in Unix milliseconds.
    pub at_ms: i64,
    /// The matter it concerns, when it concerns one.
    pub matter: Option<String>,
    /// Its position in the rule's source.
    pub position: u64,
}

/// The observations one rule holds for one subject.
#[derive(Debug, Default)]
struct Window {
    /// Times (and matters) of the observations counted, oldest first; for `many_matters`
    /// one per distinct matter, at its latest time.
    seen: VecDeque<(i64, Option<String>)>,
    /// Nothing is raised for this subject before this time.
    quiet_until: i64,
    /// The latest observation's time.
    latest: i64,
}

/// Observations between sweeps of forgotten subjects.
const SWEEP_EVERY: u64 = 4096;

/// The detector: windows per (rule, subject).
#[derive(Debug)]
pub struct Detector {
    thresholds: Thresholds,
    windows: HashMap<(Rule, String), Window>,
    observed: u64,
}

impl Detector {
    pub fn new(thresholds: Thresholds) -> Self {
        Detector {
            thresholds,
            windows: HashMap::new(),
            observed: 0,
        }
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// Keeps `rule` quiet for `subject` until `until_ms`: how a restarted detector honours the
    /// alerts raised before it started.
    pub fn quiet(&mut self, rule: Rule, subject: &str, until_ms: i64) {
        let window = self.windows.entry((rule, subject.to_owned())).or_default();
        window.quiet_until = window.quiet_until.max(until_ms);
        window.latest = window.latest.max(until_ms);
    }

    /// How many (rule, subject) windows are held.
    pub fn subjects(&self) -> usize {
        self.windows.len()
    }

    /// Counts `observation`; returns the alert it trips, if any. `format_time` renders Unix
    /// milliseconds as the log writes times.
    pub fn observe(
        &mut self,
        observation: Observation,
        format_time: impl Fn(i64) -> String,
    ) -> Option<AlertRaised> {
        let rule = observation.rule;
        if !self.thresholds.is_on(rule) {
            return None;
        }
        self.observed += 1;
        if self.observed.is_multiple_of(SWEEP_EVERY) {
            self.sweep(observation.at_ms);
        }
        let threshold = self.thresholds.of(rule);
        let count = usize::try_from(threshold.count).unwrap_or(usize::MAX);
        let start = observation.at_ms.saturating_sub(threshold.window_ms());
        let window = self
            .windows
            .entry((rule, observation.subject.clone()))
            .or_default();
        window.latest = window.latest.max(observation.at_ms);
        if rule == Rule::ManyMatters {
            let Some(matter) = &observation.matter else {
                return None;
            };
            window
                .seen
                .retain(|(_, seen)| seen.as_deref() != Some(matter.as_str()));
        }
        window
            .seen
            .push_back((observation.at_ms, observation.matter.clone()));
        while window.seen.front().is_some_and(|(at, _)| *at <= start) {
            window.seen.pop_front();
        }
        while window.seen.len() > count {
            window.seen.pop_front();
        }
        if window.seen.len() < count || observation.at_ms < window.quiet_until {
            return None;
        }
        let seen = std::mem::take(&mut window.seen);
        window.quiet_until = observation.at_ms.saturating_add(threshold.window_ms());
        let first_at = seen.front().map_or(observation.at_ms, |(at, _)| *at);
        let mut matters: Vec<String> = Vec::new();
        for matter in seen.iter().filter_map(|(_, matter)| matter.as_ref()) {
            if matters.len() < MAX_MATTERS && !matters.contains(matter) {
                matters.push(matter.clone());
            }
        }
        let counted = u64::try_from(seen.len()).unwrap_or(u64::MAX);
        let source = rule.source();
        Some(AlertRaised {
            alert_id: alert_id(&[
                rule.as_str(),
                &observation.subject,
                source.as_str(),
                &observation.position.to_string(),
            ]),
            rule: rule.as_str().to_owned(),
            severity: rule.severity(),
            subject: Some(observation.subject),
            count: counted,
            threshold: u64::from(threshold.count),
            window_secs: threshold.window_secs,
            first_at: format_time(first_at),
            last_at: format_time(observation.at_ms),
            matters,
            source,
            through: Some(observation.position),
            summary: rule.summary(counted, threshold.window_secs),
        })
    }

    /// Forgets subjects whose window and quiet period have both passed by `now_ms`.
    fn sweep(&mut self, now_ms: i64) {
        let thresholds = &self.thresholds;
        self.windows.retain(|(rule, _), window| {
            let start = now_ms.saturating_sub(thresholds.of(*rule).window_ms());
            window.quiet_until > now_ms || window.latest > start
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn seen(rule: Rule, subject: &str, at_ms: i64, matter: Option<&str>) -> Observation {
        Observation {
            rule,
            subject: subject.into(),
            at_ms,
            matter: matter.map(str::to_owned),
            position: u64::try_from(at_ms).unwrap(),
        }
    }

    fn time(ms: i64) -> String {
        ms.to_string()
    }

    #[test]
    fn a_rule_trips_at_its_threshold_within_its_window_and_then_stays_quiet() {
        let mut thresholds = Thresholds::default();
        thresholds.set(Rule::FailedLogins, Threshold::new(3, 600));
        let mut detector = Detector::new(thresholds);
        let mut fail =
            |at| detector.observe(seen(Rule::FailedLogins, "account:ada", at, None), time);
        assert!(fail(0).is_none());
        assert!(fail(MINUTE).is_none());
        let alert = fail(2 * MINUTE).expect("the third failure within 10 minutes trips");
        assert_eq!(alert.rule, "failed_logins");
        assert_eq!(alert.count, 3);
        assert_eq!(alert.threshold, 3);
        assert_eq!(alert.first_at, "0");
        assert_eq!(alert.last_at, (2 * MINUTE).to_string());
        assert_eq!(alert.through, Some(u64::try_from(2 * MINUTE).unwrap()));
        assert_eq!(alert.source, AlertSource::Log);
        // Quiet for one window: three more failures at once raise nothing...
        for at in [3, 4, 5] {
            assert!(fail(at * MINUTE).is_none());
        }
        // ...but they are counted: once the quiet window has passed, a burst still going on
        // raises again.
        let again = fail(12 * MINUTE).expect("the failures went on");
        assert_eq!(again.first_at, (4 * MINUTE).to_string());
        // After that, a lone failure once the window is over raises nothing.
        assert!(fail(30 * MINUTE).is_none());
    }

    #[test]
    fn observations_older_than_the_window_do_not_count() {
        let mut thresholds = Thresholds::default();
        thresholds.set(Rule::FailedLogins, Threshold::new(3, 600));
        let mut detector = Detector::new(thresholds);
        let mut fail =
            |at| detector.observe(seen(Rule::FailedLogins, "account:ada", at, None), time);
        assert!(fail(0).is_none());
        assert!(fail(6 * MINUTE).is_none());
        assert!(
            fail(11 * MINUTE).is_none(),
            "the first failure fell out of the window"
        );
        assert!(fail(12 * MINUTE).is_some());
    }

    #[test]
    fn subjects_are_counted_apart() {
        let mut thresholds = Thresholds::default();
        thresholds.set(Rule::FailedLogins, Threshold::new(2, 600));
        let mut detector = Detector::new(thresholds);
        assert!(
            detector
                .observe(seen(Rule::FailedLogins, "account:a", 0, None), time)
                .is_none()
        );
        assert!(
            detector
                .observe(seen(Rule::FailedLogins, "account:b", 1, None), time)
                .is_none()
        );
        let alert = detector.observe(seen(Rule::FailedLogins, "account:a", 2, None), time);
        assert_eq!(alert.unwrap().subject.as_deref(), Some("account:a"));
    }

    #[test]
    fn many_matters_counts_distinct_matters() {
        let mut thresholds = Thresholds::default();
        thresholds.set(Rule::ManyMatters, Threshold::new(3, 600));
        let mut detector = Detector::new(thresholds);
        let mut read = |at, matter| {
            detector.observe(seen(Rule::ManyMatters, "user:eve", at, Some(matter)), time)
        };
        assert!(read(0, "M-1").is_none());
        for at in 1..50 {
            assert!(
                read(at, "M-1").is_none(),
                "the same matter again counts once"
            );
        }
        assert!(read(60, "M-2").is_none());
        let alert = read(70, "M-3").expect("three distinct matters");
        assert_eq!(alert.matters, vec!["M-1", "M-2", "M-3"]);
        assert_eq!(alert.count, 3);
        assert_eq!(alert.first_at, "49", "M-1 counts at its latest read");
    }

    #[test]
    fn a_rule_at_zero_is_off_and_off_hours_needs_working_hours() {
        let mut thresholds = Thresholds::default();
        thresholds.set(Rule::WalledAttempts, Threshold::new(0, 600));
        assert!(!thresholds.is_on(Rule::WalledAttempts));
        assert!(!thresholds.is_on(Rule::OffHours));
        let mut detector = Detector::new(thresholds);
        assert!(
            detector
                .observe(seen(Rule::WalledAttempts, "user:eve", 0, Some("M-1")), time)
                .is_none()
        );
        assert!(
            detector
                .observe(seen(Rule::OffHours, "user:eve", 0, None), time)
                .is_none()
        );
        assert_eq!(detector.subjects(), 0);
    }

    #[test]
    fn a_quiet_period_carried_over_holds_the_rule_back() {
        let mut detector = Detector::new(Thresholds::default());
        detector.quiet(Rule::BreakGlass, "user:bo", 10 * MINUTE);
        let glass = |at| seen(Rule::BreakGlass, "user:bo", at, Some("M-9"));
        assert!(detector.observe(glass(MINUTE), time).is_none());
        assert!(detector.observe(glass(11 * MINUTE), time).is_some());
    }

    #[test]
    fn forgotten_subjects_are_swept_so_memory_stays_bounded() {
        let mut thresholds = Thresholds::default();
        thresholds.set(Rule::FailedLogins, Threshold::new(5, 60));
        let mut detector = Detector::new(thresholds);
        for n in 0..(3 * SWEEP_EVERY) {
            let at = i64::try_from(n).unwrap() * 1000;
            let subject = format!("address:10.0.{}.{}", n / 256, n % 256);
            assert!(
                detector
                    .observe(seen(Rule::FailedLogins, &subject, at, None), time)
                    .is_none()
            );
        }
        assert!(
            detector.subjects() <= usize::try_from(SWEEP_EVERY).unwrap() + 60,
            "{} subjects held",
            detector.subjects()
        );
    }

    #[test]
    fn every_rule_has_its_metric_series_and_a_stable_name() {
        for rule in Rule::ALL {
            assert_eq!(Rule::parse(rule.as_str()), Some(rule));
            assert!(crate::metrics::ALERT_KINDS.contains(&rule.as_str()));
        }
    }
}
