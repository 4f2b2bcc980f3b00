//! What the session did, summed up in one pass and kept small: every event
//! is kept (the e-mail attaches them all), but as a compact row whose
//! repeated strings (services, event names, regions, user agents, source
//! addresses, error codes) are stored once.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::{AuditEvent, high_risk_of, is_denial, service_of};

/// Totals: what the header, the verdict and the counts section show. Built
/// from the events, or by the engine (Logs Insights `stats`) when it can
/// count; the same rules classify both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counts {
    pub total: u64,
    pub writes: u64,
    pub high_risk: u64,
    /// Refused: access denied, unauthorised.
    pub denied: u64,
    /// Every call that returned an error, denials included.
    pub failed: u64,
    pub sign_ins: u64,
    pub by_service: BTreeMap<String, u64>,
    /// (service, event name) → count.
    pub by_event: BTreeMap<(String, String), u64>,
    /// Error code → count.
    pub by_error: BTreeMap<String, u64>,
}

/// Console sign-ins, however CloudTrail labels them.
pub fn is_sign_in(event_name: &str, event_type: Option<&str>) -> bool {
    event_type == Some("AwsConsoleSignIn") || event_name == "ConsoleLogin"
}

impl Counts {
    /// Counts `n` calls of one kind.
    pub fn add(
        &mut self,
        event_source: &str,
        event_name: &str,
        read_only: Option<bool>,
        error_code: Option<&str>,
        event_type: Option<&str>,
        n: u64,
    ) {
        let service = service_of(event_source);
        self.total += n;
        if read_only == Some(false) {
            self.writes += n;
        }
        if high_risk_of(service, event_name, read_only).is_some() {
            self.high_risk += n;
        }
        if let Some(code) = error_code {
            self.failed += n;
            if is_denial(code) {
                self.denied += n;
            }
            *self.by_error.entry(code.to_string()).or_default() += n;
        }
        if is_sign_in(event_name, event_type) {
            self.sign_ins += n;
        }
        *self.by_service.entry(service.to_string()).or_default() += n;
        *self
            .by_event
            .entry((service.to_string(), event_name.to_string()))
            .or_default() += n;
    }
}

/// Strings seen over and over, stored once; id 0 is "absent".
#[derive(Debug, Clone, PartialEq, Eq)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
    strings: Vec<Box<str>>,
}

impl Default for Interner {
    fn default() -> Self {
        Self {
            ids: HashMap::new(),
            strings: vec!["".into()],
        }
    }
}

impl Interner {
    fn id(&mut self, s: Option<&str>) -> u32 {
        let Some(s) = s.filter(|s| !s.is_empty()) else {
            return 0;
        };
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        self.strings.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    fn get(&self, id: u32) -> Option<&str> {
        (id != 0)
            .then(|| self.strings.get(id as usize).map(|s| &**s))
            .flatten()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    time: DateTime<Utc>,
    id: Box<str>,
    resource: Option<Box<str>>,
    error_message: Option<Box<str>>,
    source: u32,
    name: u32,
    region: u32,
    ip: u32,
    agent: u32,
    error: u32,
    event_type: u32,
    read_only: Option<bool>,
}

/// One event as the renderings read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventView<'a> {
    pub time: DateTime<Utc>,
    pub event_id: &'a str,
    pub event_source: &'a str,
    pub event_name: &'a str,
    pub region: &'a str,
    pub source_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub read_only: Option<bool>,
    pub event_type: Option<&'a str>,
}

impl EventView<'_> {
    pub fn service(&self) -> &str {
        service_of(self.event_source)
    }
    pub fn is_write(&self) -> bool {
        self.read_only == Some(false)
    }
    pub fn high_risk(&self) -> Option<&'static str> {
        high_risk_of(self.service(), self.event_name, self.read_only)
    }
    pub fn denied(&self) -> bool {
        self.error_code.is_some_and(is_denial)
    }
    pub fn sign_in(&self) -> bool {
        is_sign_in(self.event_name, self.event_type)
    }
}

/// Events per bucket of the activity timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub total: u64,
    pub writes: u64,
    pub high_risk: u64,
    pub denied: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub minutes: i64,
    pub buckets: Vec<Bucket>,
}

/// Bucket widths tried, smallest first; the first that needs at most
/// [`MAX_BUCKETS`] buckets is used.
const WIDTHS: &[i64] = &[1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];
pub const MAX_BUCKETS: i64 = 36;

/// The session's events and what they add up to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    strings: Interner,
    rows: Vec<Row>,
    counted: Counts,
    engine: Option<Counts>,
    finished: bool,
}

impl Summary {
    /// One pass over `events`, then sorted and counted.
    pub fn build<I: IntoIterator<Item = AuditEvent>>(events: I) -> Self {
        let mut s = Summary::default();
        s.extend(events);
        s.finish();
        s
    }

    /// Adds events (in any order; [`Summary::finish`] sorts).
    pub fn extend<I: IntoIterator<Item = AuditEvent>>(&mut self, events: I) {
        self.finished = false;
        for e in events {
            let row = Row {
                time: e.event_time,
                source: self.strings.id(Some(&e.event_source)),
                name: self.strings.id(Some(&e.event_name)),
                region: self.strings.id(Some(&e.aws_region)),
                ip: self.strings.id(e.source_ip.as_deref()),
                agent: self.strings.id(e.user_agent.as_deref()),
                error: self.strings.id(e.error_code.as_deref()),
                event_type: self.strings.id(e.event_type.as_deref()),
                read_only: e.read_only,
                error_message: e.error_message.map(String::into_boxed_str),
                resource: e.resource.map(String::into_boxed_str),
                id: e.event_id.into_boxed_str(),
            };
            self.rows.push(row);
        }
    }

    /// Sorts by time and counts. Counting groups rows by their interned
    /// kind first, so it allocates per kind of call, not per event.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.rows
            .sort_unstable_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        self.rows.shrink_to_fit();
        let mut kinds: HashMap<(u32, u32, u32, u32, Option<bool>), u64> = HashMap::new();
        for r in &self.rows {
            *kinds
                .entry((r.source, r.name, r.error, r.event_type, r.read_only))
                .or_default() += 1;
        }
        let mut counted = Counts::default();
        for ((source, name, error, event_type, read_only), n) in kinds {
            counted.add(
                self.strings.get(source).unwrap_or_default(),
                self.strings.get(name).unwrap_or_default(),
                read_only,
                self.strings.get(error),
                self.strings.get(event_type),
                n,
            );
        }
        self.counted = counted;
        self.finished = true;
    }

    /// Totals the engine counted over the whole window: they stand even
    /// when listing the events was cut short.
    pub fn set_engine_counts(&mut self, counts: Counts) {
        self.engine = Some(counts);
    }

    /// Whether the totals are the engine's.
    pub fn counted_by_engine(&self) -> bool {
        self.engine.is_some()
    }

    /// The totals: the engine's when it counted, else the events'.
    pub fn counts(&self) -> &Counts {
        self.engine.as_ref().unwrap_or(&self.counted)
    }

    /// The totals of the events listed (equal to [`Summary::counts`] when
    /// the listing is complete).
    pub fn listed_counts(&self) -> &Counts {
        &self.counted
    }

    /// How many events are listed (and attached).
    pub fn listed(&self) -> usize {
        self.rows.len()
    }

    fn view<'a>(&'a self, r: &'a Row) -> EventView<'a> {
        EventView {
            time: r.time,
            event_id: &r.id,
            event_source: self.strings.get(r.source).unwrap_or_default(),
            event_name: self.strings.get(r.name).unwrap_or_default(),
            region: self.strings.get(r.region).unwrap_or_default(),
            source_ip: self.strings.get(r.ip),
            user_agent: self.strings.get(r.agent),
            error_code: self.strings.get(r.error),
            error_message: r.error_message.as_deref(),
            resource: r.resource.as_deref(),
            read_only: r.read_only,
            event_type: self.strings.get(r.event_type),
        }
    }

    /// Every listed event, in time order.
    pub fn events(&self) -> impl Iterator<Item = EventView<'_>> {
        self.rows.iter().map(|r| self.view(r))
    }

    pub fn high_risk(&self) -> impl Iterator<Item = (&'static str, EventView<'_>)> {
        self.events().filter_map(|e| e.high_risk().map(|l| (l, e)))
    }

    pub fn writes(&self) -> impl Iterator<Item = EventView<'_>> {
        self.events().filter(EventView::is_write)
    }

    /// Calls that returned an error, denials included.
    pub fn failed(&self) -> impl Iterator<Item = EventView<'_>> {
        self.events().filter(|e| e.error_code.is_some())
    }

    pub fn sign_ins(&self) -> impl Iterator<Item = EventView<'_>> {
        self.events().filter(EventView::sign_in)
    }

    /// Events per few minutes from the first listed event to the last, in
    /// at most [`MAX_BUCKETS`] buckets aligned to whole widths.
    pub fn timeline(&self) -> Timeline {
        let (Some(first), Some(last)) = (self.rows.first(), self.rows.last()) else {
            return Timeline {
                minutes: 0,
                buckets: Vec::new(),
            };
        };
        let (first, last) = (first.time.timestamp(), last.time.timestamp());
        let minutes = WIDTHS
            .iter()
            .copied()
            .find(|w| {
                let width = w * 60;
                (last.div_euclid(width) - first.div_euclid(width) + 1) <= MAX_BUCKETS
            })
            .unwrap_or(1440);
        let width = minutes * 60;
        let base = first.div_euclid(width) * width;
        let n = (last.div_euclid(width) - first.div_euclid(width) + 1).max(1) as usize;
        let mut buckets: Vec<Bucket> = (0..n)
            .map(|i| Bucket {
                start: DateTime::from_timestamp(base + i as i64 * width, 0).unwrap_or_default(),
                total: 0,
                writes: 0,
                high_risk: 0,
                denied: 0,
            })
            .collect();
        for e in self.events() {
            let i = ((e.time.timestamp() - base) / width) as usize;
            if let Some(b) = buckets.get_mut(i) {
                b.total += 1;
                b.writes += u64::from(e.is_write());
                b.high_risk += u64::from(e.high_risk().is_some());
                b.denied += u64::from(e.denied());
            }
        }
        Timeline { minutes, buckets }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::event;
    use super::*;

    fn parsed(specs: &[(&str, &str, bool)]) -> Vec<AuditEvent> {
        specs
            .iter()
            .map(|(n, s, r)| AuditEvent::from_cloudtrail_json(&event(n, s, *r)).unwrap())
            .collect()
    }

    #[test]
    fn summaries_count_sort_and_list() {
        let mut events = parsed(&[
            ("DescribeInstances", "ec2.amazonaws.com", true),
            ("DeleteRole", "iam.amazonaws.com", false),
            ("RunInstances", "ec2.amazonaws.com", false),
            ("StopLogging", "cloudtrail.amazonaws.com", false),
        ]);
        events[0].event_time = "2026-11-30T09:20:00Z".parse().unwrap();
        events[3].error_code = Some("AccessDenied".into());
        let s = Summary::build(events.clone());
        let c = s.counts();
        assert_eq!(
            (c.total, c.writes, c.high_risk, c.denied, c.failed),
            (4, 3, 2, 1, 1)
        );
        assert_eq!(c.by_service["ec2"], 2);
        assert_eq!(c.by_event[&("iam".to_string(), "DeleteRole".to_string())], 1);
        assert_eq!(c.by_error["AccessDenied"], 1);
        assert_eq!(s.events().last().unwrap().event_name, "DescribeInstances");
        assert_eq!(s.writes().count(), 3);
        assert_eq!(
            s.high_risk().map(|(l, _)| l).collect::<Vec<_>>(),
            ["IAM change", "CloudTrail tampering"],
            "same second: by event id"
        );
        // Counting the same events by kind, as the engine does, agrees.
        let mut by_kind = Counts::default();
        for e in &events {
            by_kind.add(
                &e.event_source,
                &e.event_name,
                e.read_only,
                e.error_code.as_deref(),
                e.event_type.as_deref(),
                1,
            );
        }
        assert_eq!(&by_kind, s.counts());
    }

    #[test]
    fn the_timeline_picks_a_width_that_fits() {
        let mut events = Vec::new();
        let base: DateTime<Utc> = "2026-11-30T09:03:00Z".parse().unwrap();
        for i in 0..120 {
            let mut e =
                AuditEvent::from_cloudtrail_json(&event("DeleteRole", "iam.amazonaws.com", i % 2 == 0))
                    .unwrap();
            e.event_id = format!("e{i}");
            e.event_time = base + chrono::Duration::minutes(i);
            events.push(e);
        }
        let t = Summary::build(events).timeline();
        // Two hours: 5-minute buckets would be 25, 2-minute ones 60.
        assert_eq!(t.minutes, 5);
        assert_eq!(t.buckets.len(), 25);
        assert_eq!(
            t.buckets[0].start,
            "2026-11-30T09:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(t.buckets.iter().map(|b| b.total).sum::<u64>(), 120);
        assert_eq!(t.buckets.iter().map(|b| b.high_risk).sum::<u64>(), 60);
        assert!(Summary::default().timeline().buckets.is_empty());
    }
}
