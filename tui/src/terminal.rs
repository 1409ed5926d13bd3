//! Terminal setup and the guarantee that it is undone: raw mode off, alternate screen
//! left and cursor shown on quit, on error (the guard's `Drop`) and on panic (a hook that
//! restores first, so the panic message lands on a usable terminal).

use std::io::{stdout, Stdout};
use std::panic::{self, PanicHookInfo};
use std::sync::Arc;

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

type Hook = Arc<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

pub struct Guard {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
    previous_hook: Hook,
}

/// Best-effort restore: each step is attempted even if an earlier one fails.
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, Show);
}

impl Guard {
    pub fn enter() -> std::io::Result<Guard> {
        let previous_hook: Hook = Arc::from(panic::take_hook());
        let chained = previous_hook.clone();
        panic::set_hook(Box::new(move |info| {
            restore();
            chained(info);
        }));
        let guard = |r: std::io::Result<()>| {
            if r.is_err() {
                restore();
            }
            r
        };
        guard(enable_raw_mode())?;
        guard(execute!(stdout(), EnterAlternateScreen, Hide))?;
        let terminal = match Terminal::new(CrosstermBackend::new(stdout())) {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(e);
            }
        };
        Ok(Guard {
            terminal,
            previous_hook,
        })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
        let previous = self.previous_hook.clone();
        let _ = panic::take_hook();
        panic::set_hook(Box::new(move |info| previous(info)));
    }
}
