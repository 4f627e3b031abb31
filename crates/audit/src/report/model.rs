//! What a report says: the serializable [`Report`] (the `--format json` schema) and the
//! streaming [`ReportBuilder`] that computes it from records.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::clock;
use crate::record::{Decision, Record};

/// Identifies the JSON schema; bumped when a field changes meaning or disappears.
pub const REPORT_SCHEMA: &str = "portcullis.audit.report/1";

/// Most rows kept in each list of individual records (denials, approvals, errors,
/// anomalies): the newest ones; `omitted` counts the rest.
pub const RECENT_LIMIT: usize = 100;

/// Rows in the top-talker tables.
pub const TOP_LIMIT: usize = 10;

/// A reason starting with this marks a record as an anomaly (`anomaly: burst of 120
/// calls/min`), whatever its decision: the anomaly detector writes its finding there.
pub const ANOMALY_PREFIX: &str = "anomaly:";

/// Whether `record` reports an anomaly: its `reason` starts with [`ANOMALY_PREFIX`]
/// (ASCII case-insensitive, leading whitespace ignored).
pub fn is_anomaly(record: &Record) -> bool {
    record.reason.as_deref().is_some_and(|reason| {
        let reason = reason.trim_start().as_bytes();
        reason.len() >= ANOMALY_PREFIX.len()
            && reason[..ANOMALY_PREFIX.len()].eq_ignore_ascii_case(ANOMALY_PREFIX.as_bytes())
    })
}

/// Shown for records without a principal (refused before authentication).
pub const UNAUTHENTICATED: &str = "(unauthenticated)";

/// The audit report over `[since, until)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_SCHEMA`].
    pub schema: String,
    /// Start of the period (inclusive), RFC 3339.
    pub since: String,
    /// End of the period (exclusive), the `now` the report was built at.
    pub until: String,
    pub totals: Totals,
    /// Sequence numbers of the first and last record in the period.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Calls per principal, most calls first.
    pub principals: Vec<PrincipalRow>,
    /// Calls per tool, resource or prompt (records with a `name`), most calls first.
    pub tools: Vec<ToolRow>,
    /// Calls per JSON-RPC method, most calls first.
    pub methods: Vec<CountRow>,
    pub top_talkers: TopTalkers,
    pub denials: Section,
    pub approvals: Section,
    pub errors: Section,
    pub anomalies: Section,
    pub series: Series,
}

/// Counts over the whole period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub records: u64,
    pub decisions: DecisionCounts,
    pub anomalies: u64,
    pub principals: u64,
    pub tools: u64,
    pub client_ips: u64,
}

/// Records per decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionCounts {
    pub allow: u64,
    pub deny: u64,
    pub approved: u64,
    pub rejected: u64,
    pub error: u64,
}

impl DecisionCounts {
    pub fn add(&mut self, decision: Decision) {
        *self.slot(decision) += 1;
    }

    pub fn get(&self, decision: Decision) -> u64 {
        match decision {
            Decision::Allow => self.allow,
            Decision::Deny => self.deny,
            Decision::Approved => self.approved,
            Decision::Rejected => self.rejected,
            Decision::Error => self.error,
        }
    }

    pub fn total(&self) -> u64 {
        self.allow + self.deny + self.approved + self.rejected + self.error
    }

    fn slot(&mut self, decision: Decision) -> &mut u64 {
        match decision {
            Decision::Allow => &mut self.allow,
            Decision::Deny => &mut self.deny,
            Decision::Approved => &mut self.approved,
            Decision::Rejected => &mut self.rejected,
            Decision::Error => &mut self.error,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrincipalRow {
    pub principal: String,
    pub calls: u64,
    pub decisions: DecisionCounts,
    /// Distinct tools this principal named.
    pub tools: u64,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolRow {
    pub name: String,
    /// Upstreams the calls were routed to (usually one).
    pub upstreams: Vec<String>,
    pub calls: u64,
    pub decisions: DecisionCounts,
    /// Distinct principals that named this tool.
    pub principals: u64,
    /// Mean latency of the calls, milliseconds.
    pub mean_latency_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountRow {
    pub key: String,
    pub count: u64,
}

/// The busiest principals and client addresses, with their share of all records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopTalkers {
    pub principals: Vec<Talker>,
    pub client_ips: Vec<Talker>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Talker {
    pub key: String,
    pub count: u64,
    /// Percent of all records in the period, one decimal.
    pub share: f64,
}

/// A class of records (denials, approvals, errors, anomalies): how many, grouped by reason,
/// and the newest ones individually.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub total: u64,
    /// One row per (decision, reason, policy ids), most records first.
    pub by_reason: Vec<ReasonRow>,
    /// The newest [`RECENT_LIMIT`] records, newest first.
    pub recent: Vec<RecordRef>,
    /// Records of this class not listed in `recent`.
    pub omitted: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasonRow {
    pub decision: Decision,
    pub reason: String,
    pub policy_ids: Vec<String>,
    pub count: u64,
    /// Distinct principals and tools involved (at most [`TOP_LIMIT`] each, sorted).
    pub principals: Vec<String>,
    pub tools: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
}

/// One record as a report row (no arguments, results or hashes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordRef {
    pub seq: u64,
    pub ts: String,
    pub request_id: String,
    pub principal: String,
    pub client_ip: Option<String>,
    pub upstream: Option<String>,
    pub method: String,
    pub name: Option<String>,
    pub decision: Decision,
    pub reason: Option<String>,
    pub policy_ids: Vec<String>,
    pub status: Option<u16>,
    pub latency_ms: u64,
}

impl RecordRef {
    fn of(record: &Record) -> RecordRef {
        RecordRef {
            seq: record.seq,
            ts: record.ts.clone(),
            request_id: record.request_id.clone(),
            principal: principal_of(record).to_owned(),
            client_ip: record.client_ip.clone(),
            upstream: record.upstream.clone(),
            method: record.method.clone(),
            name: record.name.clone(),
            decision: record.decision,
            reason: record.reason.clone(),
            policy_ids: record.policy_ids.clone(),
            status: record.status,
            latency_ms: record.latency_ms,
        }
    }
}

/// Records over time in fixed buckets covering the whole period (empty buckets included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub bucket: Bucket,
    pub points: Vec<Point>,
}

/// Bucket width: hours for periods up to three days, days beyond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    pub fn millis(self) -> i64 {
        match self {
            Bucket::Hour => 3_600_000,
            Bucket::Day => 86_400_000,
        }
    }

    /// The bucket width for a period of `span_ms`.
    pub fn for_span(span_ms: i64) -> Bucket {
        if span_ms <= 3 * 86_400_000 {
            Bucket::Hour
        } else {
            Bucket::Day
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Start of the bucket, RFC 3339.
    pub start: String,
    pub decisions: DecisionCounts,
    pub anomalies: u64,
}

pub(crate) fn principal_of(record: &Record) -> &str {
    record.principal.as_deref().unwrap_or(UNAUTHENTICATED)
}

/// Builds a [`Report`] one record at a time, so a report over millions of records needs
/// memory only for the distinct principals, tools and reasons.
#[derive(Debug)]
pub struct ReportBuilder {
    since_ms: i64,
    now_ms: i64,
    bucket: Bucket,
    totals: Totals,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    principals: BTreeMap<String, PrincipalAcc>,
    tools: BTreeMap<String, ToolAcc>,
    methods: BTreeMap<String, u64>,
    client_ips: BTreeMap<String, u64>,
    denials: SectionAcc,
    approvals: SectionAcc,
    errors: SectionAcc,
    anomalies: SectionAcc,
    points: Vec<Point>,
}

#[derive(Debug)]
struct PrincipalAcc {
    decisions: DecisionCounts,
    tools: BTreeSet<String>,
    first_seen: String,
    last_seen: String,
}

#[derive(Debug, Default)]
struct ToolAcc {
    upstreams: BTreeSet<String>,
    decisions: DecisionCounts,
    principals: BTreeSet<String>,
    latency_sum: u128,
}

#[derive(Debug, Default)]
struct SectionAcc {
    total: u64,
    by_reason: BTreeMap<(Decision, String, Vec<String>), ReasonAcc>,
    recent: VecDeque<RecordRef>,
}

#[derive(Debug)]
struct ReasonAcc {
    count: u64,
    principals: BTreeSet<String>,
    tools: BTreeSet<String>,
    first_seen: String,
    last_seen: String,
}

impl SectionAcc {
    fn add(&mut self, record: &Record) {
        self.total += 1;
        let key = (
            record.decision,
            record.reason.clone().unwrap_or_default(),
            record.policy_ids.clone(),
        );
        let row = self.by_reason.entry(key).or_insert_with(|| ReasonAcc {
            count: 0,
            principals: BTreeSet::new(),
            tools: BTreeSet::new(),
            first_seen: record.ts.clone(),
            last_seen: record.ts.clone(),
        });
        row.count += 1;
        bounded_insert(&mut row.principals, principal_of(record));
        if let Some(name) = record.name.as_deref() {
            bounded_insert(&mut row.tools, name);
        }
        if record.ts < row.first_seen {
            row.first_seen = record.ts.clone();
        }
        if record.ts > row.last_seen {
            row.last_seen = record.ts.clone();
        }
        if self.recent.len() == RECENT_LIMIT {
            self.recent.pop_front();
        }
        self.recent.push_back(RecordRef::of(record));
    }

    fn finish(self) -> Section {
        let mut by_reason: Vec<ReasonRow> = self
            .by_reason
            .into_iter()
            .map(|((decision, reason, policy_ids), acc)| ReasonRow {
                decision,
                reason,
                policy_ids,
                count: acc.count,
                principals: acc.principals.into_iter().collect(),
                tools: acc.tools.into_iter().collect(),
                first_seen: acc.first_seen,
                last_seen: acc.last_seen,
            })
            .collect();
        // Stable: most first, then the BTreeMap's key order.
        by_reason.sort_by_key(|row| std::cmp::Reverse(row.count));
        let omitted = self.total - self.recent.len() as u64;
        Section {
            total: self.total,
            by_reason,
            recent: self.recent.into_iter().rev().collect(),
            omitted,
        }
    }
}

/// Keeps at most [`TOP_LIMIT`] names (the alphabetically first), so one busy reason cannot
/// grow without bound.
fn bounded_insert(set: &mut BTreeSet<String>, value: &str) {
    if set.contains(value) {
        return;
    }
    if set.len() < TOP_LIMIT {
        set.insert(value.to_owned());
    } else if set.last().is_some_and(|last| value < last.as_str()) {
        set.pop_last();
        set.insert(value.to_owned());
    }
}

impl ReportBuilder {
    /// A report over `[since_ms, now_ms)` (Unix milliseconds).
    pub fn new(since_ms: i64, now_ms: i64) -> ReportBuilder {
        let since_ms = since_ms.min(now_ms);
        let bucket = Bucket::for_span(now_ms - since_ms);
        let width = bucket.millis();
        let first = since_ms.div_euclid(width) * width;
        let points = (0..)
            .map(|i| first + i * width)
            .take_while(|start| *start < now_ms || *start == first)
            .map(|start| Point {
                start: clock::format_ms(start),
                decisions: DecisionCounts::default(),
                anomalies: 0,
            })
            .collect();
        ReportBuilder {
            since_ms,
            now_ms,
            bucket,
            totals: Totals::default(),
            first_seq: None,
            last_seq: None,
            principals: BTreeMap::new(),
            tools: BTreeMap::new(),
            methods: BTreeMap::new(),
            client_ips: BTreeMap::new(),
            denials: SectionAcc::default(),
            approvals: SectionAcc::default(),
            errors: SectionAcc::default(),
            anomalies: SectionAcc::default(),
            points,
        }
    }

    /// Counts `record` when its `ts` lies in the period; returns whether it did.
    pub fn add(&mut self, record: &Record) -> bool {
        let Some(ts) = clock::parse_ms(&record.ts) else {
            tracing::warn!(seq = record.seq, ts = %record.ts, "audit record with an unreadable ts left out of the report");
            return false;
        };
        if ts < self.since_ms || ts >= self.now_ms {
            return false;
        }
        let anomaly = is_anomaly(record);
        self.totals.records += 1;
        self.totals.decisions.add(record.decision);
        self.first_seq = Some(self.first_seq.map_or(record.seq, |s| s.min(record.seq)));
        self.last_seq = Some(self.last_seq.map_or(record.seq, |s| s.max(record.seq)));

        let principal = principal_of(record);
        let acc = self
            .principals
            .entry(principal.to_owned())
            .or_insert_with(|| PrincipalAcc {
                decisions: DecisionCounts::default(),
                tools: BTreeSet::new(),
                first_seen: record.ts.clone(),
                last_seen: record.ts.clone(),
            });
        acc.decisions.add(record.decision);
        if record.ts < acc.first_seen {
            acc.first_seen = record.ts.clone();
        }
        if record.ts > acc.last_seen {
            acc.last_seen = record.ts.clone();
        }
        if let Some(name) = record.name.as_deref() {
            acc.tools.insert(name.to_owned());
            let tool = self.tools.entry(name.to_owned()).or_default();
            tool.decisions.add(record.decision);
            tool.principals.insert(principal.to_owned());
            tool.latency_sum += u128::from(record.latency_ms);
            if let Some(upstream) = record.upstream.as_deref() {
                tool.upstreams.insert(upstream.to_owned());
            }
        }
        *self.methods.entry(record.method.clone()).or_default() += 1;
        if let Some(ip) = record.client_ip.as_deref() {
            *self.client_ips.entry(ip.to_owned()).or_default() += 1;
        }

        match record.decision {
            Decision::Deny => self.denials.add(record),
            Decision::Approved | Decision::Rejected => self.approvals.add(record),
            Decision::Error => self.errors.add(record),
            Decision::Allow => {}
        }
        if anomaly {
            self.totals.anomalies += 1;
            self.anomalies.add(record);
        }

        let width = self.bucket.millis();
        let first = self.since_ms.div_euclid(width) * width;
        let index = usize::try_from((ts - first).div_euclid(width)).unwrap_or(usize::MAX);
        if let Some(point) = self.points.get_mut(index) {
            point.decisions.add(record.decision);
            if anomaly {
                point.anomalies += 1;
            }
        }
        true
    }

    pub fn finish(self) -> Report {
        let records = self.totals.records;
        let share = |count: u64| {
            if records == 0 {
                0.0
            } else {
                (count as f64 * 1000.0 / records as f64).round() / 10.0
            }
        };
        let mut principals: Vec<PrincipalRow> = self
            .principals
            .into_iter()
            .map(|(principal, acc)| PrincipalRow {
                principal,
                calls: acc.decisions.total(),
                decisions: acc.decisions,
                tools: acc.tools.len() as u64,
                first_seen: acc.first_seen,
                last_seen: acc.last_seen,
            })
            .collect();
        principals.sort_by_key(|row| std::cmp::Reverse(row.calls));
        let mut tools: Vec<ToolRow> = self
            .tools
            .into_iter()
            .map(|(name, acc)| {
                let calls = acc.decisions.total();
                ToolRow {
                    name,
                    upstreams: acc.upstreams.into_iter().collect(),
                    calls,
                    decisions: acc.decisions,
                    principals: acc.principals.len() as u64,
                    mean_latency_ms: u64::try_from(acc.latency_sum / u128::from(calls.max(1)))
                        .unwrap_or(u64::MAX),
                }
            })
            .collect();
        tools.sort_by_key(|row| std::cmp::Reverse(row.calls));
        let mut methods: Vec<CountRow> = self
            .methods
            .into_iter()
            .map(|(key, count)| CountRow { key, count })
            .collect();
        methods.sort_by_key(|row| std::cmp::Reverse(row.count));
        let talkers = |rows: Vec<(String, u64)>| -> Vec<Talker> {
            let mut rows = rows;
            rows.sort_by_key(|row| std::cmp::Reverse(row.1));
            rows.into_iter()
                .take(TOP_LIMIT)
                .map(|(key, count)| Talker {
                    key,
                    count,
                    share: share(count),
                })
                .collect()
        };
        let totals = Totals {
            principals: principals.len() as u64,
            tools: tools.len() as u64,
            client_ips: self.client_ips.len() as u64,
            ..self.totals
        };
        let top_talkers = TopTalkers {
            principals: talkers(
                principals
                    .iter()
                    .map(|p| (p.principal.clone(), p.calls))
                    .collect(),
            ),
            client_ips: talkers(self.client_ips.into_iter().collect()),
        };
        Report {
            schema: REPORT_SCHEMA.to_owned(),
            since: clock::format_ms(self.since_ms),
            until: clock::format_ms(self.now_ms),
            totals,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            principals,
            tools,
            methods,
            top_talkers,
            denials: self.denials.finish(),
            approvals: self.approvals.finish(),
            errors: self.errors.finish(),
            anomalies: self.anomalies.finish(),
            series: Series {
                bucket: self.bucket,
                points: self.points,
            },
        }
    }
}

/// The report over `[since_ms, now_ms)` of `records` (any order; records outside the period
/// are left out).
pub fn build_report<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    since_ms: i64,
    now_ms: i64,
) -> Report {
    let mut builder = ReportBuilder::new(since_ms, now_ms);
    for record in records {
        builder.add(record);
    }
    builder.finish()
}
