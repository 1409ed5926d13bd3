//! Logging that can neither stall nor crash the process.
//!
//! A daemon's stderr is whatever its supervisor gave it: a terminal, a log collector that
//! may go away (a closed pipe: every write fails with EPIPE) or one that stops reading (a
//! full pipe: every write blocks). Writing log lines straight to it would make any thread
//! that logs — the signal handler's task included — hang or panic. So every log line is
//! handed to a bounded queue with `try_send` (a full queue drops the line) and written by
//! one dedicated thread, which stops writing after the first error and only keeps
//! draining. At exit the queue gets a bounded time to reach the output.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lines waiting for the writer thread before new ones are dropped.
const QUEUE_LINES: usize = 16 * 1024;
/// How long the exit waits for queued lines to be written.
const DRAIN_AT_EXIT: Duration = Duration::from_millis(500);

/// A lossy, never-blocking log output (cheap to clone: one queue).
#[derive(Clone)]
pub struct LogSink {
    tx: SyncSender<Vec<u8>>,
    /// Lines queued and not yet written (or discarded after an error).
    queued: Arc<AtomicUsize>,
}

impl LogSink {
    /// Start the writer thread `name` that owns `out`.
    pub fn spawn<W: Write + Send + 'static>(name: &str, mut out: W) -> std::io::Result<LogSink> {
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE_LINES);
        let queued = Arc::new(AtomicUsize::new(0));
        let done = queued.clone();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let mut broken = false;
                for line in rx {
                    if !broken {
                        broken = out.write_all(&line).and_then(|()| out.flush()).is_err();
                    }
                    done.fetch_sub(1, Ordering::AcqRel);
                }
            })?;
        Ok(LogSink { tx, queued })
    }

    /// Queue one formatted line; a full queue drops it.
    fn push(&self, line: &[u8]) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        if self.tx.try_send(line.to_vec()).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Wait until every queued line is written, or `limit` has passed.
    pub fn drain(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.queued.load(Ordering::Acquire) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

/// What `tracing-subscriber` writes one event into.
pub struct SinkWriter<'a>(&'a LogSink);

impl Write for SinkWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = SinkWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        SinkWriter(self)
    }
}

/// Keeps logging alive; on drop, gives the queued lines a bounded time to be written.
pub struct LogGuard {
    sinks: Vec<LogSink>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let deadline = Instant::now() + DRAIN_AT_EXIT;
        for sink in &self.sinks {
            sink.drain(deadline.saturating_duration_since(Instant::now()));
        }
    }
}

/// A formatting layer (human or JSON) writing to `sink`, filtered by `filter`.
fn sink_layer<S>(
    sink: LogSink,
    ansi: bool,
    json: bool,
    filter: tracing_subscriber::EnvFilter,
) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer;
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(sink);
    if json {
        layer.json().with_filter(filter).boxed()
    } else {
        layer.with_filter(filter).boxed()
    }
}

/// Install the tracing subscriber: stderr (human or JSON) and, with `[log] file`,
/// `<data_dir>/logs/bitsota.log`, both through a [`LogSink`]. Keep the guard as long as
/// logging is wanted.
pub(crate) fn init_logging(
    config: &crate::config::Config,
    to_stderr: bool,
) -> anyhow::Result<LogGuard> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = |level: &str| {
        tracing_subscriber::EnvFilter::try_new(level)
            .map_err(|e| crate::config::ConfigError(format!("config: log.level: {level:?}: {e}")))
    };
    let json = config.log.format == crate::config::LogFormat::Json;
    let mut sinks = Vec::new();
    let stderr = if to_stderr {
        use std::io::IsTerminal;
        let sink = LogSink::spawn("log-stderr", std::io::stderr())?;
        sinks.push(sink.clone());
        let ansi = !json && std::io::stderr().is_terminal();
        Some(sink_layer(sink, ansi, json, filter(&config.log.level)?))
    } else {
        None
    };
    let file = if config.log.file {
        let dir = config.data_dir.join("logs");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("bitsota.log");
        let file = crate::logfile::RotatingFile::open(&path, config.log.file_max_mb << 20)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        let sink = LogSink::spawn("log-file", file)?;
        sinks.push(sink.clone());
        Some(sink_layer(sink, false, json, filter(&config.log.level)?))
    } else {
        None
    };
    // A second initialisation (tests calling commands in-process) is harmless.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    Ok(LogGuard { sinks })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that fails every write, as a closed pipe does.
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// An output that never returns, as a pipe nobody reads.
    struct Stuck(std::sync::mpsc::Receiver<()>);
    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            Ok(0)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_output_is_drained_without_errors() {
        let sink = LogSink::spawn("test-closed", Closed).unwrap();
        let mut w = SinkWriter(&sink);
        for _ in 0..1000 {
            assert_eq!(w.write(b"line\n").unwrap(), 5);
        }
        assert!(sink.drain(Duration::from_secs(10)));
    }

    #[test]
    fn a_stuck_output_never_blocks_the_logger() {
        let (_keep, rx) = std::sync::mpsc::channel();
        let sink = LogSink::spawn("test-stuck", Stuck(rx)).unwrap();
        let mut w = SinkWriter(&sink);
        let start = Instant::now();
        for _ in 0..QUEUE_LINES + 100 {
            w.write_all(b"line\n").unwrap();
        }
        // The queue holds QUEUE_LINES (and the writer perhaps one); the rest was dropped.
        let queued = sink.queued.load(Ordering::Acquire);
        assert!(
            (QUEUE_LINES..=QUEUE_LINES + 1).contains(&queued),
            "{queued}"
        );
        assert!(!sink.drain(Duration::from_millis(50)));
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
