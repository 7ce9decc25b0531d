//! The `statusmon` binary: parses the command line, sets up logging and runs the command.

use std::process::ExitCode;

use clap::Parser;
use statusmon::cli::{self, Cli};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: each resolution builds and drops a document of
/// thousands of small strings, and glibc's malloc spent more than half the daemon's CPU on that
/// churn (see BENCHMARKS.md) and kept the freed memory fragmented.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (its position in `mi_option_e`, mimalloc 3's `mimalloc.h`;
/// `libmimalloc-sys` declares `mi_option_set` but has no constant for this option).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Has mimalloc return freed memory to the OS at once instead of a second later. The daemon
/// resolves and publishes every second or two, so with the default delay the memory of one
/// round was never returned before the next round's arrived: at a thousand tenants that held
/// about 14 MiB more resident (see BENCHMARKS.md). `MIMALLOC_PURGE_DELAY` in the environment
/// still wins.
#[allow(unsafe_code)]
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` only stores an integer in mimalloc's option table; it is not
    // synchronised, so it runs first thing in `main`, before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

/// Turns transparent huge pages off for this process. mimalloc asks the kernel for huge pages on
/// its arenas, and a 2 MiB page that holds a few live objects stays resident whole: with a
/// thousand tenants that was a third of the daemon's memory (see BENCHMARKS.md). The daemon's
/// working set is small, so huge pages buy it nothing.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!(%error, "could not turn transparent huge pages off");
    }
}

fn main() -> ExitCode {
    purge_freed_memory_at_once();
    let cli = Cli::parse();
    let filter =
        EnvFilter::try_from_env("STATUSMON_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    no_huge_pages();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cli::exit::UNKNOWN);
        }
    };
    let failure_code = match cli.command {
        cli::Command::Status { .. } => cli::exit::UNKNOWN,
        _ => cli::exit::WARNING,
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(failure_code)
        }
    }
}
