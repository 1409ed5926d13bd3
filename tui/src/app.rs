//! Dashboard state and its pure update function: an [`Event`] (key, poll result, tick)
//! changes the [`App`] and yields the HTTP [`Request`]s to make. Nothing here touches the
//! terminal or the network, so every behaviour is unit-testable.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde::Serialize;

use crate::api::{
    AdminStatus, ApplianceStatus, Candidate, CursorPage, EpochRow, LeaderRow, LogLine, PoolHealth,
    SidecarState, SotaEventsPage, SotaThreshold, ValidatorInfo, ValidatorsResponse,
};

/// The spec's limit: no endpoint is asked more than once per second.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Feeds only another tab shows are refreshed this rarely, so an idle dashboard costs the
/// daemon a handful of requests per second.
pub const BACKGROUND_INTERVAL: Duration = Duration::from_secs(5);
/// Page size for the cursor feeds (the sidecar's maximum), so a backlog drains quickly.
pub const PAGE_LIMIT: u32 = 500;
/// Log lines kept in memory; the tail view only ever shows the last screenful.
const LOG_CAP: usize = 1000;
/// Candidates kept; the sidecar itself keeps 2000.
const CANDIDATE_CAP: usize = 2000;
/// Children/s samples kept: one per poll, so ten minutes.
const RATE_CAP: usize = 600;
/// Miner task types in the order `t` cycles through them.
pub const TASK_TYPES: [&str; 5] = [
    "scalar_linear",
    "mnist_binary",
    "cifar10_binary",
    "pool",
    "pool_lease",
];
/// Engines in the order `e` cycles through them.
pub const ENGINES: [&str; 2] = ["baseline", "archive"];
/// Upper bound for `+`; the daemon validates its own limit too.
pub const MAX_WORKERS: u32 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tab {
    Mining,
    Candidates,
    Validators,
    Sota,
    Pool,
    Relay,
}

impl Tab {
    pub const ALL: [Tab; 6] = [
        Tab::Mining,
        Tab::Candidates,
        Tab::Validators,
        Tab::Sota,
        Tab::Pool,
        Tab::Relay,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Mining => "Mining",
            Tab::Candidates => "Candidates",
            Tab::Validators => "Validators",
            Tab::Sota => "SOTA",
            Tab::Pool => "Pool",
            Tab::Relay => "Relay",
        }
    }

    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    fn shifted(self, by: isize) -> Tab {
        let n = Tab::ALL.len() as isize;
        Tab::ALL[(self.index() as isize + by).rem_euclid(n) as usize]
    }
}

/// The three listeners the dashboard talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    Relay,
    Sidecar,
    Pool,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Relay, Service::Sidecar, Service::Pool];

    pub fn name(self) -> &'static str {
        match self {
            Service::Relay => "relay",
            Service::Sidecar => "sidecar",
            Service::Pool => "pool",
        }
    }
}

/// What the dashboard last learned about a service's reachability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// No answer yet.
    Unknown,
    Up,
    /// Connection refused or timed out; polling continues, so a restart is picked up.
    Down(String),
    /// The appliance reports the service as not enabled; it is not polled.
    Disabled,
}

/// One polled endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Feed {
    ApplianceStatus,
    SidecarState,
    Logs,
    Candidates,
    Validators,
    SotaThreshold,
    SotaEvents,
    AdminStatus,
    PoolHealth,
    Leaderboard,
    PoolMonitor,
    Epochs,
}

impl Feed {
    pub const ALL: [Feed; 12] = [
        Feed::ApplianceStatus,
        Feed::SidecarState,
        Feed::Logs,
        Feed::Candidates,
        Feed::Validators,
        Feed::SotaThreshold,
        Feed::SotaEvents,
        Feed::AdminStatus,
        Feed::PoolHealth,
        Feed::Leaderboard,
        Feed::PoolMonitor,
        Feed::Epochs,
    ];

    pub fn service(self) -> Service {
        match self {
            Feed::ApplianceStatus
            | Feed::SidecarState
            | Feed::Logs
            | Feed::Candidates
            | Feed::Validators => Service::Sidecar,
            Feed::SotaThreshold | Feed::SotaEvents | Feed::AdminStatus => Service::Relay,
            Feed::PoolHealth | Feed::Leaderboard | Feed::PoolMonitor | Feed::Epochs => {
                Service::Pool
            }
        }
    }

    /// Whether the feed must stay fresh whatever the tab: the header's reachability (one
    /// feed per service), the Mining tab's numbers and the log tail (the Pool tab's lease
    /// lines come from it too).
    fn always_fresh(self) -> bool {
        matches!(
            self,
            Feed::ApplianceStatus
                | Feed::SidecarState
                | Feed::Logs
                | Feed::SotaThreshold
                | Feed::PoolHealth
        )
    }

    /// The tab that shows this feed.
    fn tab(self) -> Tab {
        match self {
            Feed::ApplianceStatus | Feed::SidecarState | Feed::Logs => Tab::Mining,
            Feed::Candidates => Tab::Candidates,
            Feed::Validators => Tab::Validators,
            Feed::SotaThreshold | Feed::SotaEvents => Tab::Sota,
            Feed::PoolHealth | Feed::Leaderboard | Feed::PoolMonitor | Feed::Epochs => Tab::Pool,
            Feed::AdminStatus => Tab::Relay,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Feed::ApplianceStatus => "/appliance/status",
            Feed::SidecarState => "/state",
            Feed::Logs => "/logs",
            Feed::Candidates => "/candidates",
            Feed::Validators => "/appliance/validators",
            Feed::SotaThreshold => "/sota_threshold",
            Feed::SotaEvents => "/sota-events",
            Feed::AdminStatus => "/admin/status",
            Feed::PoolHealth => "/health",
            Feed::Leaderboard => "/api/v1/miners/leaderboard",
            Feed::PoolMonitor => "/api/v1/monitor/summary",
            Feed::Epochs => "/api/v1/epochs",
        }
    }
}

/// A GET of one feed. Cursor feeds carry the run and cursor they asked from, so a late
/// answer for a run the dashboard has moved past is recognised and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get {
    pub feed: Feed,
    pub run_id: Option<String>,
    pub cursor: Option<u64>,
}

impl Get {
    fn plain(feed: Feed) -> Get {
        Get {
            feed,
            run_id: None,
            cursor: None,
        }
    }

    /// Query parameters of the request.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        match self.feed {
            Feed::Logs | Feed::Candidates => {
                q.push(("cursor", self.cursor.unwrap_or(0).to_string()));
                q.push(("limit", PAGE_LIMIT.to_string()));
            }
            Feed::SotaEvents => {
                q.push(("page", "1".into()));
                q.push(("page_size", "100".into()));
            }
            Feed::Leaderboard => q.push(("limit", "20".into())),
            _ => {}
        }
        if let Some(r) = &self.run_id {
            q.push(("run_id", r.clone()));
        }
        q
    }
}

/// Body of `POST /appliance/mine/start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StartMining {
    pub task_type: String,
    pub engine: String,
    pub workers: u32,
    /// Start from the relay's SOTA program (`[miner] start_from_sota`).
    pub start_from_sota: bool,
}

/// What the dashboard asks the poller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Get(Get),
    StartMining(StartMining),
    StopMining,
}

impl Request {
    pub fn service(&self) -> Service {
        match self {
            Request::Get(g) => g.feed.service(),
            Request::StartMining(_) | Request::StopMining => Service::Sidecar,
        }
    }
}

/// Why a request produced no data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No HTTP answer at all (refused, reset, timed out): the service counts as down.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// An HTTP error status with the body's `detail` when there is one.
    #[error("HTTP {status}: {detail}")]
    Http { status: u16, detail: String },
    /// A 2xx answer whose body is not the documented shape.
    #[error("bad response: {0}")]
    Decode(String),
}

/// A decoded answer of one feed.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    ApplianceStatus(ApplianceStatus),
    SidecarState(SidecarState),
    Logs(CursorPage<LogLine>),
    Candidates(CursorPage<Candidate>),
    Validators(Vec<ValidatorInfo>),
    SotaThreshold(SotaThreshold),
    SotaEvents(SotaEventsPage),
    AdminStatus(AdminStatus),
    PoolHealth(PoolHealth),
    Leaderboard(Vec<LeaderRow>),
    PoolMonitor(serde_json::Value),
    Epochs(Vec<EpochRow>),
}

impl Payload {
    /// Decodes a 2xx body of `feed`.
    pub fn decode(feed: Feed, body: &str) -> Result<Payload, FetchError> {
        fn de<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, FetchError> {
            serde_json::from_str(body).map_err(|e| FetchError::Decode(e.to_string()))
        }
        Ok(match feed {
            Feed::ApplianceStatus => Payload::ApplianceStatus(de(body)?),
            Feed::SidecarState => Payload::SidecarState(de(body)?),
            Feed::Logs => Payload::Logs(de(body)?),
            Feed::Candidates => Payload::Candidates(de(body)?),
            Feed::Validators => Payload::Validators(de::<ValidatorsResponse>(body)?.validators),
            Feed::SotaThreshold => Payload::SotaThreshold(de(body)?),
            Feed::SotaEvents => Payload::SotaEvents(de(body)?),
            Feed::AdminStatus => Payload::AdminStatus(de(body)?),
            Feed::PoolHealth => Payload::PoolHealth(de(body)?),
            Feed::Leaderboard => Payload::Leaderboard(de(body)?),
            Feed::PoolMonitor => Payload::PoolMonitor(de(body)?),
            Feed::Epochs => Payload::Epochs(EpochRow::list_from(&de(body)?)),
        })
    }
}

/// A mining control action, echoed back with its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
}

// Events are moved once each, straight into `update`; boxing the payload would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Key(KeyEvent),
    Polled(Get, Result<Payload, FetchError>),
    /// Outcome of a start/stop: the daemon's run id or status on success.
    Acted(Action, Result<String, FetchError>),
    /// Time passes: due polls are issued.
    Tick(Instant),
}

/// Scheduling state of one feed.
#[derive(Debug, Clone, Default)]
struct FeedState {
    last_sent: Option<Instant>,
    in_flight: bool,
    error: Option<String>,
}

/// The settings `s` starts a run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MineSettings {
    pub task_type: usize,
    pub engine: usize,
    pub workers: u32,
    /// Start from the relay's SOTA program instead of fresh programs.
    pub start_from_sota: bool,
}

impl MineSettings {
    pub fn task_type(&self) -> &'static str {
        TASK_TYPES[self.task_type]
    }
    pub fn engine(&self) -> &'static str {
        ENGINES[self.engine]
    }
    /// Where the next run starts.
    pub fn start(&self) -> &'static str {
        start_label(self.start_from_sota)
    }
}

/// How the dashboard names a run's start.
pub fn start_label(from_sota: bool) -> &'static str {
    if from_sota {
        "from the relay's SOTA"
    } else {
        "fresh"
    }
}

/// Everything the dashboard shows, and the bookkeeping that drives polling.
#[derive(Debug)]
pub struct App {
    pub tab: Tab,
    pub quit: bool,
    pub help: bool,
    pub has_admin_token: bool,
    pub reach: BTreeMap<Service, Reach>,
    feeds: BTreeMap<Feed, FeedState>,
    /// Settings for the next start; taken from the running miner until the user edits them.
    pub settings: MineSettings,
    settings_edited: bool,
    action_pending: bool,
    /// The last action's outcome or a hint, shown in the footer.
    pub message: Option<String>,

    pub appliance: Option<ApplianceStatus>,
    pub state: Option<SidecarState>,
    /// The run whose logs and candidates are being followed.
    pub run_id: Option<String>,
    pub logs: VecDeque<LogLine>,
    logs_cursor: u64,
    pub candidates: Vec<Candidate>,
    candidates_cursor: u64,
    /// Index into `candidates` of the selected row; `None` follows the newest.
    pub selected: Option<usize>,
    /// The candidate whose DSL is open, and the popup's scroll offset.
    pub dsl_open: Option<usize>,
    pub dsl_scroll: u16,
    /// Children/s, one sample per appliance-status poll (0 while not mining).
    pub rate_history: VecDeque<u64>,
    pub validators: Vec<ValidatorInfo>,
    pub threshold: Option<SotaThreshold>,
    pub sota_events: Option<SotaEventsPage>,
    pub admin: Option<AdminStatus>,
    pub pool_health: Option<PoolHealth>,
    pub leaderboard: Vec<LeaderRow>,
    pub pool_monitor: Option<serde_json::Value>,
    pub epochs: Vec<EpochRow>,
}

impl App {
    pub fn new(has_admin_token: bool) -> App {
        App {
            tab: Tab::Mining,
            quit: false,
            help: false,
            has_admin_token,
            reach: Service::ALL.iter().map(|s| (*s, Reach::Unknown)).collect(),
            feeds: Feed::ALL
                .iter()
                .map(|f| (*f, FeedState::default()))
                .collect(),
            settings: MineSettings {
                task_type: 0,
                engine: 0,
                workers: 2,
                start_from_sota: false,
            },
            settings_edited: false,
            action_pending: false,
            message: None,
            appliance: None,
            state: None,
            run_id: None,
            logs: VecDeque::new(),
            logs_cursor: 0,
            candidates: Vec::new(),
            candidates_cursor: 0,
            selected: None,
            dsl_open: None,
            dsl_scroll: 0,
            rate_history: VecDeque::new(),
            validators: Vec::new(),
            threshold: None,
            sota_events: None,
            admin: None,
            pool_health: None,
            leaderboard: Vec::new(),
            pool_monitor: None,
            epochs: Vec::new(),
        }
    }

    pub fn reach(&self, s: Service) -> &Reach {
        self.reach.get(&s).unwrap_or(&Reach::Unknown)
    }

    /// The last error of a feed (HTTP error or undecodable body), if its last poll failed.
    pub fn feed_error(&self, f: Feed) -> Option<&str> {
        self.feeds.get(&f).and_then(|s| s.error.as_deref())
    }

    pub fn mining(&self) -> bool {
        self.appliance.as_ref().is_some_and(|a| a.miner.running)
    }

    /// Where the next logs / candidates page starts.
    pub fn cursors(&self) -> (u64, u64) {
        (self.logs_cursor, self.candidates_cursor)
    }

    /// Candidate indices in display order (newest first).
    pub fn candidate_order(&self) -> impl Iterator<Item = usize> {
        (0..self.candidates.len()).rev()
    }

    /// The selected candidate index, defaulting to the newest.
    pub fn selected_candidate(&self) -> Option<usize> {
        self.selected
            .or_else(|| self.candidates.len().checked_sub(1))
    }

    /// How often `f` is polled now: every second while visible or always needed.
    pub fn interval(&self, f: Feed) -> Duration {
        if f.always_fresh() || f.tab() == self.tab {
            POLL_INTERVAL
        } else {
            BACKGROUND_INTERVAL
        }
    }

    fn feed_due(&self, f: Feed, now: Instant) -> bool {
        let st = &self.feeds[&f];
        if st.in_flight || *self.reach(f.service()) == Reach::Disabled {
            return false;
        }
        if st
            .last_sent
            .is_some_and(|t| now.duration_since(t) < self.interval(f))
        {
            return false;
        }
        match f {
            Feed::AdminStatus => self.has_admin_token,
            // Logs and candidates belong to a run; without one there is nothing to follow.
            Feed::Logs | Feed::Candidates => self.run_id.is_some(),
            _ => true,
        }
    }

    fn get_for(&self, f: Feed) -> Get {
        match f {
            Feed::Logs => Get {
                feed: f,
                run_id: self.run_id.clone(),
                cursor: Some(self.logs_cursor),
            },
            Feed::Candidates => Get {
                feed: f,
                run_id: self.run_id.clone(),
                cursor: Some(self.candidates_cursor),
            },
            _ => Get::plain(f),
        }
    }

    fn on_tick(&mut self, now: Instant) -> Vec<Request> {
        let due: Vec<Feed> = Feed::ALL
            .iter()
            .copied()
            .filter(|f| self.feed_due(*f, now))
            .collect();
        due.into_iter()
            .map(|f| {
                let st = self.feeds.get_mut(&f).expect("every feed has a state");
                st.in_flight = true;
                st.last_sent = Some(now);
                Request::Get(self.get_for(f))
            })
            .collect()
    }

    fn on_polled(&mut self, get: Get, result: Result<Payload, FetchError>) {
        let service = get.feed.service();
        let st = self
            .feeds
            .get_mut(&get.feed)
            .expect("every feed has a state");
        st.in_flight = false;
        match result {
            Err(FetchError::Unreachable(why)) => {
                st.error = None;
                if self.reach(service) != &Reach::Disabled {
                    self.reach.insert(service, Reach::Down(why));
                }
            }
            Err(e) => {
                st.error = Some(e.to_string());
                self.reach.insert(service, Reach::Up);
            }
            Ok(payload) => {
                st.error = None;
                self.reach.insert(service, Reach::Up);
                self.apply(get, payload);
            }
        }
    }

    fn apply(&mut self, get: Get, payload: Payload) {
        match payload {
            Payload::ApplianceStatus(s) => self.apply_appliance(s),
            Payload::SidecarState(s) => {
                if let Some(r) = s.run_id.clone().filter(|r| !r.is_empty()) {
                    self.follow_run(r);
                }
                self.state = Some(s);
            }
            Payload::Logs(page) => {
                if get.run_id == self.run_id {
                    self.logs.extend(fresh(page.items, get.cursor, |l| l.seq));
                    let excess = self.logs.len().saturating_sub(LOG_CAP);
                    self.logs.drain(..excess);
                    self.logs_cursor = page.cursor;
                }
            }
            Payload::Candidates(page) => {
                if get.run_id == self.run_id {
                    self.candidates
                        .extend(fresh(page.items, get.cursor, |c| c.seq));
                    let excess = self.candidates.len().saturating_sub(CANDIDATE_CAP);
                    if excess > 0 {
                        self.candidates.drain(..excess);
                        self.selected = self.selected.and_then(|i| i.checked_sub(excess));
                        self.dsl_open = self.dsl_open.and_then(|i| i.checked_sub(excess));
                    }
                    self.candidates_cursor = page.cursor;
                }
            }
            Payload::Validators(v) => self.validators = v,
            Payload::SotaThreshold(t) => self.threshold = Some(t),
            Payload::SotaEvents(e) => self.sota_events = Some(e),
            Payload::AdminStatus(a) => self.admin = Some(a),
            Payload::PoolHealth(h) => self.pool_health = Some(h),
            Payload::Leaderboard(l) => self.leaderboard = l,
            Payload::PoolMonitor(m) => self.pool_monitor = Some(m),
            Payload::Epochs(e) => self.epochs = e,
        }
    }

    fn apply_appliance(&mut self, s: ApplianceStatus) {
        let m = &s.miner;
        let rate = if m.running {
            m.children_per_sec.unwrap_or(0.0).max(0.0).round() as u64
        } else {
            0
        };
        self.rate_history.push_back(rate);
        if self.rate_history.len() > RATE_CAP {
            self.rate_history.pop_front();
        }
        if !self.settings_edited {
            if let Some(i) = m
                .task_type
                .as_deref()
                .and_then(|t| index_of(&TASK_TYPES, t))
            {
                self.settings.task_type = i;
            }
            if let Some(i) = m.engine.as_deref().and_then(|e| index_of(&ENGINES, e)) {
                self.settings.engine = i;
            }
            if let Some(w) = m.workers.filter(|w| (1..=MAX_WORKERS).contains(w)) {
                self.settings.workers = w;
            }
            if let Some(b) = m.start_from_sota {
                self.settings.start_from_sota = b;
            }
        }
        if let Some(r) = m.run_id.clone().filter(|r| !r.is_empty()) {
            self.follow_run(r);
        }
        for (svc, info) in [
            (Service::Relay, &s.services.relay),
            (Service::Pool, &s.services.pool),
        ] {
            match info {
                Some(i) if !i.enabled => {
                    self.reach.insert(svc, Reach::Disabled);
                }
                _ if self.reach(svc) == &Reach::Disabled => {
                    self.reach.insert(svc, Reach::Unknown);
                }
                _ => {}
            }
        }
        self.appliance = Some(s);
    }

    /// Switches the followed run: its logs and candidates start again from cursor 0.
    fn follow_run(&mut self, run_id: String) {
        if self.run_id.as_deref() == Some(run_id.as_str()) {
            return;
        }
        self.run_id = Some(run_id);
        self.logs.clear();
        self.logs_cursor = 0;
        self.candidates.clear();
        self.candidates_cursor = 0;
        self.selected = None;
        self.dsl_open = None;
    }

    fn on_acted(&mut self, action: Action, result: Result<String, FetchError>) {
        self.action_pending = false;
        self.message = Some(match (action, result) {
            (Action::Start, Ok(run)) => format!("mining started: {run}"),
            (Action::Stop, Ok(_)) => "mining stopped".into(),
            (Action::Start, Err(e)) => format!("start failed: {e}"),
            (Action::Stop, Err(e)) => format!("stop failed: {e}"),
        });
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Request> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        if key.code == KeyCode::Char('q') || ctrl_c {
            self.quit = true;
            return Vec::new();
        }
        if self.help {
            // Any key closes the help overlay.
            self.help = false;
            return Vec::new();
        }
        if self.dsl_open.is_some() {
            match key.code {
                KeyCode::Esc | KeyCode::Enter => self.dsl_open = None,
                KeyCode::Down | KeyCode::Char('j') => {
                    self.dsl_scroll = self.dsl_scroll.saturating_add(1)
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    self.dsl_scroll = self.dsl_scroll.saturating_sub(1)
                }
                _ => {}
            }
            return Vec::new();
        }
        match key.code {
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char(c @ '1'..='6') => self.tab = Tab::ALL[(c as u8 - b'1') as usize],
            KeyCode::Tab => self.tab = self.tab.shifted(1),
            KeyCode::BackTab => self.tab = self.tab.shifted(-1),
            KeyCode::Char('s') => return self.toggle_mining(),
            KeyCode::Char('t') => {
                self.settings.task_type = (self.settings.task_type + 1) % TASK_TYPES.len();
                self.edited(format!("task type: {}", self.settings.task_type()));
            }
            KeyCode::Char('e') => {
                self.settings.engine = (self.settings.engine + 1) % ENGINES.len();
                self.edited(format!("engine: {}", self.settings.engine()));
            }
            KeyCode::Char('+') | KeyCode::Char('=') => {
                self.settings.workers = (self.settings.workers + 1).min(MAX_WORKERS);
                self.edited(format!("workers: {}", self.settings.workers));
            }
            KeyCode::Char('-') => {
                self.settings.workers = self.settings.workers.saturating_sub(1).max(1);
                self.edited(format!("workers: {}", self.settings.workers));
            }
            KeyCode::Char('f') => {
                self.settings.start_from_sota = !self.settings.start_from_sota;
                self.edited(format!("start: {}", self.settings.start()));
            }
            KeyCode::Esc => self.message = None,
            _ if self.tab == Tab::Candidates => self.candidate_key(key.code),
            _ => {}
        }
        Vec::new()
    }

    fn edited(&mut self, what: String) {
        self.settings_edited = true;
        let when = if self.mining() {
            " (applies at the next start: s stops, s starts)"
        } else {
            " (s starts mining)"
        };
        self.message = Some(format!("{what}{when}"));
    }

    fn toggle_mining(&mut self) -> Vec<Request> {
        if self.action_pending {
            self.message = Some("waiting for the previous start/stop to answer".into());
            return Vec::new();
        }
        self.action_pending = true;
        if self.mining() {
            self.message = Some("stopping mining…".into());
            vec![Request::StopMining]
        } else {
            self.message = Some(format!(
                "starting {} / {} with {} workers…",
                self.settings.task_type(),
                self.settings.engine(),
                self.settings.workers
            ));
            vec![Request::StartMining(StartMining {
                task_type: self.settings.task_type().into(),
                engine: self.settings.engine().into(),
                workers: self.settings.workers,
                start_from_sota: self.settings.start_from_sota,
            })]
        }
    }

    fn candidate_key(&mut self, code: KeyCode) {
        let Some(cur) = self.selected_candidate() else {
            return;
        };
        let last = self.candidates.len() - 1;
        // Display order is newest first, so "down" goes to older (lower) indices.
        match code {
            KeyCode::Down | KeyCode::Char('j') => self.selected = Some(cur.saturating_sub(1)),
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = if cur + 1 >= last { None } else { Some(cur + 1) }
            }
            KeyCode::Home | KeyCode::Char('g') => self.selected = None,
            KeyCode::End | KeyCode::Char('G') => self.selected = Some(0),
            KeyCode::Enter => {
                self.dsl_open = Some(cur);
                self.dsl_scroll = 0;
            }
            _ => {}
        }
    }
}

/// Drops items the dashboard already has (seq below the cursor it asked from), so a
/// daemon that replays a page cannot duplicate rows.
fn fresh<T>(items: Vec<T>, cursor: Option<u64>, seq: impl Fn(&T) -> Option<u64>) -> Vec<T> {
    let from = cursor.unwrap_or(0);
    items
        .into_iter()
        .filter(|i| seq(i).map_or(true, |s| s >= from))
        .collect()
}

fn index_of(list: &[&str], item: &str) -> Option<usize> {
    list.iter().position(|x| *x == item)
}

/// The update function: applies `event` to `app` and returns the requests to make.
pub fn update(app: &mut App, event: Event) -> Vec<Request> {
    match event {
        Event::Key(k) => app.on_key(k),
        Event::Tick(now) => app.on_tick(now),
        Event::Polled(get, result) => {
            app.on_polled(get, result);
            Vec::new()
        }
        Event::Acted(action, result) => {
            app.on_acted(action, result);
            Vec::new()
        }
    }
}
