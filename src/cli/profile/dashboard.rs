//! `bitsota profile dashboard`: the path `bitsota up` runs. An in-process daemon's
//! supervisor mines (its islands built by the miner, its events written into the
//! sidecar store), while this thread is the dashboard: the tui crate's state and
//! update function on its real 250 ms tick, its polls made over HTTP and, with the log
//! handler on, its frames drawn into a `TestBackend` whose log panel shows
//! `--sink-lines` lines (the counterpart of the desktop app's GUI log handler).
//!
//! The islands are the daemon's, so they are watched through
//! [`crate::engine::stages::set_watch`]: each holds at the end of its warm-up until
//! sampling has started, and the counters of the window are each island's difference
//! between that moment and its last generation. The window ends once the dashboard has
//! shown the run's end: its last log line fetched, its status `stopped`.

use super::record::{profile_to, Record, Sampled, Sampler};
use super::{LocalDaemon, SearchFlags, UsageError};
use crate::engine::stages::{self, Stages, Watch};
use crate::sidecar::rules::{Caps, Stream};
use crate::sidecar::SidecarStore;
use anyhow::{bail, Context};
use bitsota_tui::app::{update, Action, App, Event, FetchError, Payload, Request, StartMining};
use parking_lot::{Condvar, Mutex};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::{json, Map};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The dashboard's tick (bitsota-tui's `TICK`): polls fall due on it.
const TICK: Duration = Duration::from_millis(250);
/// Rows of the Mining tab around its log tail: header, tab bar, the 13-row run
/// summary, the log block's two borders, footer.
const CHROME_ROWS: u16 = 18;
/// Columns of the simulated terminal.
const COLUMNS: u16 = 120;
/// How long the dashboard may take to show a finished run's last lines.
const CATCH_UP: Duration = Duration::from_secs(30);
/// The dashboard's HTTP timeout (bitsota-tui's poller).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(clap::Args, Debug)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub search: SearchFlags,
    /// Mining workers (islands).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Children per worker between the islands' progress events (default: --pop-size).
    #[arg(long)]
    pub checkpoint_generations: Option<u64>,
    /// Mine offline: no relay, and this score recorded as the run's SOTA threshold (what
    /// the dashboard shows as the bar to beat). Without it the run reads and submits to
    /// the embedded relay (test mode), as `bitsota up` does.
    #[arg(long)]
    pub offline_sota_threshold: Option<f64>,
    /// Draw the dashboard's frames (the default).
    #[arg(long, overrides_with = "no_simulate_gui_log_handler")]
    pub simulate_gui_log_handler: bool,
    /// Poll and update the dashboard's state, but draw nothing.
    #[arg(long, overrides_with = "simulate_gui_log_handler")]
    pub no_simulate_gui_log_handler: bool,
    /// Log lines the drawn log panel shows (the simulated terminal is this plus 18 rows).
    #[arg(long, default_value_t = 40)]
    pub sink_lines: u16,
}

pub fn run(args: &DashboardArgs) -> anyhow::Result<()> {
    let flags = &args.search;
    let probe = flags.problem_config(Map::from_iter([("workers".into(), json!(args.workers))]));
    let pop = flags.settings(&probe)?.1.pop_size as u64;
    let checkpoint = args.checkpoint_generations.unwrap_or(pop);
    if checkpoint == 0 {
        return Err(UsageError("--checkpoint-generations must be at least 1".into()).into());
    }
    if args.sink_lines == 0 || args.sink_lines > 1000 {
        return Err(UsageError("--sink-lines must be within 1..=1000".into()).into());
    }
    let warmup = flags.warmup_generations * pop;
    let end = warmup + flags.generations * pop;
    // The run stops by itself after the window, in one round (no restarts), as one.
    let problem = flags.problem_config(Map::from_iter([
        ("workers".into(), json!(args.workers)),
        ("checkpoint_generations".into(), json!(checkpoint)),
        ("iterations".into(), json!(end)),
    ]));
    let (settings, search) = flags.settings(&problem)?;
    let draw = args.simulate_gui_log_handler || !args.no_simulate_gui_log_handler;
    profile_to(&flags.out, flags.flamegraph, || {
        let datasets = flags.data_dir.join("datasets");
        let daemon = LocalDaemon::start("dashboard", |scratch, config| {
            let file = scratch.join("problem_config.json");
            // Written before the daemon starts; a failure shows as its settings error.
            let _ = std::fs::write(&file, problem.to_string());
            config.miner.problem_config = Some(file);
            config.miner.restart_children = Some(0);
            config.relay.enabled = args.offline_sota_threshold.is_none();
            if datasets.is_dir() {
                let _ = std::fs::create_dir_all(&config.data_dir);
                let _ = std::os::unix::fs::symlink(&datasets, config.data_dir.join("datasets"));
            }
        })?;
        let gate = Arc::new(Gate::new(settings.workers, warmup, end));
        stages::set_watch(Some(gate.clone()));
        let dashboard = Dashboard::new(&daemon, draw, args.sink_lines);
        let start = StartMining {
            task_type: settings.task_type.clone(),
            engine: settings.engine.clone(),
            workers: settings.workers as u32,
            start_from_sota: false,
        };
        let outcome = dashboard
            .and_then(|mut d| d.watch(&gate, start, args.offline_sota_threshold, flags.frequency));
        // Never leave an island waiting: shutdown joins them.
        gate.open();
        stages::set_watch(None);
        let stopped = daemon.stop();
        let (sampled, engine, counts) = outcome?;
        stopped?;
        let mut recorded = flags.record(&settings, &search);
        recorded.insert("children_per_worker".into(), json!(end - warmup));
        recorded.insert("checkpoint_generations".into(), json!(checkpoint));
        recorded.insert("log_handler".into(), json!(draw));
        recorded.insert("sink_lines".into(), json!(args.sink_lines));
        recorded.insert(
            "offline_sota_threshold".into(),
            json!(args.offline_sota_threshold),
        );
        let mut record = Record::new("dashboard", recorded, &engine, &search.mutations);
        record.stage("poll", counts.requests, counts.poll_time);
        record.stage("render", counts.frames, counts.render_time);
        record.count("events_written", counts.events_written);
        record.count("candidates_written", counts.candidates_written);
        record.count("http_requests", counts.requests);
        record.count("http_bytes_received", counts.bytes_received);
        record.count("frames", counts.frames);
        record.count("log_lines_drawn", counts.lines_drawn);
        Ok((sampled, record))
    })
}

/// Where the islands of the daemon's miner stand: their counters at the end of the
/// warm-up and at the end of the window, and whether sampling has started.
struct Gate {
    start: u64,
    end: u64,
    state: Mutex<GateState>,
    opened: Condvar,
}

struct GateState {
    at_start: Vec<Option<Stages>>,
    at_end: Vec<Option<Stages>>,
    open: bool,
}

impl Gate {
    fn new(workers: usize, start: u64, end: u64) -> Self {
        Gate {
            start,
            end,
            state: Mutex::new(GateState {
                at_start: vec![None; workers],
                at_end: vec![None; workers],
                open: false,
            }),
            opened: Condvar::new(),
        }
    }

    /// Every island is at the end of its warm-up (at once without one).
    fn warmed_up(&self) -> bool {
        self.start == 0 || self.state.lock().at_start.iter().all(Option::is_some)
    }

    fn open(&self) {
        self.state.lock().open = true;
        self.opened.notify_all();
    }

    /// The window's counters summed over the islands, once every one has finished it.
    fn window(&self) -> Option<Stages> {
        let st = self.state.lock();
        st.at_end
            .iter()
            .zip(&st.at_start)
            .try_fold(Stages::default(), |sum, (end, start)| {
                Some(sum.plus(&end.as_ref()?.since(&start.unwrap_or_default())))
            })
    }
}

impl Watch for Gate {
    fn generation(&self, worker: usize, children: u64, stages: &Stages) {
        let mut st = self.state.lock();
        if worker >= st.at_start.len() {
            return;
        }
        if children == self.end {
            st.at_end[worker] = Some(*stages);
        }
        if children == self.start {
            st.at_start[worker] = Some(*stages);
            while !st.open {
                self.opened.wait(&mut st);
            }
        }
    }
}

/// What the dashboard did in the window.
#[derive(Default)]
struct Counts {
    requests: u64,
    bytes_received: u64,
    poll_time: Duration,
    frames: u64,
    lines_drawn: u64,
    render_time: Duration,
    events_written: u64,
    candidates_written: u64,
}

/// The dashboard, minus its keyboard: state, update, polls, frames.
struct Dashboard {
    app: App,
    http: reqwest::blocking::Client,
    endpoints: bitsota_tui::Endpoints,
    terminal: Option<Terminal<TestBackend>>,
    sink_lines: usize,
    store: SidecarStore,
    counts: Counts,
}

impl Dashboard {
    fn new(daemon: &LocalDaemon, draw: bool, sink_lines: u16) -> anyhow::Result<Self> {
        let e = daemon.daemon.endpoints();
        let endpoints = bitsota_tui::Endpoints {
            relay: e.relay.clone().unwrap_or_default(),
            sidecar: daemon.sidecar_url()?,
            pool: e.pool.clone().unwrap_or_default(),
            admin_token: None,
        };
        let terminal = match draw {
            true => Some(Terminal::new(TestBackend::new(
                COLUMNS,
                sink_lines + CHROME_ROWS,
            ))?),
            false => None,
        };
        Ok(Dashboard {
            app: App::new(false),
            http: reqwest::blocking::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()?,
            endpoints,
            terminal,
            sink_lines: sink_lines as usize,
            store: SidecarStore::open(
                daemon.daemon.context.store.clone(),
                Caps::from_config(&daemon.daemon.context.config.store),
            )?,
            counts: Counts::default(),
        })
    }

    /// Start mining as the dashboard does, follow it tick by tick, sample from the end
    /// of the warm-up until the dashboard has shown the run's end.
    fn watch(
        &mut self,
        gate: &Gate,
        start: StartMining,
        offline_sota: Option<f64>,
        frequency: i32,
    ) -> anyhow::Result<(Sampled, Stages, Counts)> {
        let mut window: Option<(Sampler, [u64; 2])> = None;
        if gate.warmed_up() {
            window = Some(self.open_window(frequency)?);
        }
        let started = self.dispatch(
            Event::Tick(Instant::now()),
            Some(Request::StartMining(start)),
        );
        let run_id = match started {
            Some(Ok(run_id)) => run_id,
            Some(Err(e)) => bail!("the daemon did not start mining: {e}"),
            None => bail!("the daemon did not answer the start of mining"),
        };
        if let Some(sota) = offline_sota {
            self.http
                .post(format!("{}/set_global_sota", self.endpoints.sidecar))
                .json(&json!({"run_id": run_id, "value": sota}))
                .send()
                .and_then(|r| r.error_for_status())
                .context("recording the offline SOTA threshold")?;
        }
        if window.is_some() {
            self.counts = Counts::default();
        }
        let mut next = Instant::now();
        let mut shown_by: Option<Instant> = None;
        loop {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            let now = Instant::now();
            next = now + TICK;
            self.dispatch(Event::Tick(now), None);
            let run = self.store.run(&run_id)?.context("the run disappeared")?;
            if window.is_none() && gate.warmed_up() {
                window = Some(self.open_window(frequency)?);
                gate.open();
            }
            let stopped = run.status == "stopped";
            let Some(engine) = gate.window() else {
                if stopped {
                    bail!(
                        "the run ended before the profiled generations did: {}",
                        self.last_line()
                    );
                }
                continue;
            };
            let shown = self.app.run_id.as_deref() == Some(run_id.as_str())
                && self.app.cursors().0 >= run.next_seq[Stream::Logs.index()]
                && self.app.state.as_ref().and_then(|s| s.status.as_deref()) == Some("stopped");
            if stopped && !shown {
                // The dashboard fetches a page per second: give it a few.
                let by = *shown_by.get_or_insert(now + CATCH_UP);
                if now > by {
                    bail!("the dashboard did not show the run's end within {CATCH_UP:?}");
                }
            }
            if stopped && shown {
                let (sampler, at) = window.context("sampling never started")?;
                let sampled = sampler.stop()?;
                let mut counts = std::mem::take(&mut self.counts);
                counts.events_written = run.next_seq[Stream::Logs.index()] - at[0];
                counts.candidates_written = run.next_seq[Stream::Candidates.index()] - at[1];
                return Ok((sampled, engine, counts));
            }
        }
    }

    /// Start sampling; the store's sequence numbers then mark what the window writes.
    fn open_window(&mut self, frequency: i32) -> anyhow::Result<(Sampler, [u64; 2])> {
        let next = match self.store.current_run()? {
            Some(id) => self.store.run(&id)?.map(|r| r.next_seq),
            None => None,
        };
        let at = next.map_or([0, 0], |n| {
            [n[Stream::Logs.index()], n[Stream::Candidates.index()]]
        });
        self.counts = Counts::default();
        Ok((Sampler::start(frequency)?, at))
    }

    /// Feed an event (and a request of ours) through the update function, making the
    /// requests it asks for until none is left; draw a frame when anything arrived, as
    /// the dashboard redraws on news. Returns the outcome of a start of mining.
    fn dispatch(
        &mut self,
        event: Event,
        extra: Option<Request>,
    ) -> Option<Result<String, FetchError>> {
        let t = Instant::now();
        let mut queue: VecDeque<Request> = update(&mut self.app, event).into();
        queue.extend(extra);
        let mut news = false;
        let mut started = None;
        while let Some(req) = queue.pop_front() {
            let answer = self.execute(req);
            if let Event::Acted(Action::Start, r) = &answer {
                started = Some(r.clone());
            }
            queue.extend(update(&mut self.app, answer));
            news = true;
        }
        self.counts.poll_time += t.elapsed();
        if news {
            self.draw();
        }
        started
    }

    fn draw(&mut self) {
        let Some(terminal) = &mut self.terminal else {
            return;
        };
        let t = Instant::now();
        let app = &self.app;
        if terminal.draw(|f| bitsota_tui::view::view(app, f)).is_ok() {
            self.counts.frames += 1;
            self.counts.lines_drawn += app.logs.len().min(self.sink_lines) as u64;
        }
        self.counts.render_time += t.elapsed();
    }

    /// What the poller's thread would do with a request.
    fn execute(&mut self, req: Request) -> Event {
        let base = match req.service() {
            bitsota_tui::app::Service::Relay => &self.endpoints.relay,
            bitsota_tui::app::Service::Sidecar => &self.endpoints.sidecar,
            bitsota_tui::app::Service::Pool => &self.endpoints.pool,
        };
        match req {
            Request::Get(get) => {
                let rb = self
                    .http
                    .get(format!("{base}{}", get.feed.path()))
                    .query(&get.query());
                let feed = get.feed;
                let result = self.send(rb).and_then(|body| Payload::decode(feed, &body));
                Event::Polled(get, result)
            }
            Request::StartMining(body) => {
                let rb = self
                    .http
                    .post(format!("{base}/appliance/mine/start"))
                    .json(&body);
                let result = self.send(rb).map(|b| field(&b, "run_id"));
                Event::Acted(Action::Start, result)
            }
            Request::StopMining => {
                let rb = self.http.post(format!("{base}/appliance/mine/stop"));
                let result = self.send(rb).map(|b| field(&b, "status"));
                Event::Acted(Action::Stop, result)
            }
        }
    }

    fn send(&mut self, rb: reqwest::blocking::RequestBuilder) -> Result<String, FetchError> {
        let answer = rb.send().and_then(|r| Ok((r.status(), r.text()?)));
        let (status, body) = answer.map_err(|e| FetchError::Unreachable(e.to_string()))?;
        self.counts.requests += 1;
        self.counts.bytes_received += body.len() as u64;
        if status.is_success() {
            Ok(body)
        } else {
            Err(FetchError::Http {
                status: status.as_u16(),
                detail: bitsota_tui::poller::detail_of(&body),
            })
        }
    }

    /// The newest log line the dashboard holds (why a run ended).
    fn last_line(&self) -> String {
        self.app
            .logs
            .back()
            .map_or_else(|| "no log line".into(), |l| l.text.clone())
    }
}

/// A string field of a JSON answer, else the whole answer.
fn field(body: &str, key: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get(key).and_then(|x| x.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned())
}
