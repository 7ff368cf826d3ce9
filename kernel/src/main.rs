//! oxvpn: the unikernel image. Boots from PVH, brings up the machine, then runs the main loop.
//!
//! Layer: the top. `init` does each machine set-up step once and reports it on the console; any missing requirement ends
//! the boot with a documented exit code (`oxvpn_kernel::exit`). [`MainLoop::poll`] is where devices, the
//! OpenVPN engine and the router get polled with `now`; it returns the next deadline, and `idle::wait_until`
//! halts until then (or until a device interrupt).
#![no_std]
#![no_main]

extern crate alloc;

mod devices;
mod entropy;
mod fastpath;
mod fatal;
mod heap;
mod idle;
mod init;
mod logger;
mod net;
mod platform;
mod public;
mod remote;
mod selftest;
mod serve;
mod status;
mod tunnel;

use core::fmt::Write;

use crate::platform::exit;
use boot::pvh::StartInfo;
use drivers::clock;
use log::{error, info, warn};
use oxvpn_kernel::args::{self, BootArgs};
use oxvpn_kernel::exit::ExitCode;
use smoltcp::time::Instant;

boot::entry_point!(kernel_main);

/// Longest wait, on the host's shutdown request, for the public NIC to send what is queued.
const SHUTDOWN_DRAIN_US: u64 = 200_000;

/// Reseed the CSPRNG from hardware this often.
const RESEED_INTERVAL_US: u64 = 300 * 1_000_000;

/// Logs why the boot cannot go on and leaves with `code`.
pub(crate) fn fail(code: ExitCode, what: core::fmt::Arguments<'_>) -> ! {
    error!("{what}");
    error!("exit: {code}");
    exit(code)
}

fn kernel_main(start_info_paddr: u64) -> ! {
    clock::start();
    platform::detect();
    boot::interrupts::set_exception_hook(fatal::on_exception);
    logger::init(oxvpn_kernel::args::Verb::DEFAULT.level_filter());
    info!("oxvpn {} booting", env!("CARGO_PKG_VERSION"));

    // SAFETY: the trampoline passes ebx from the PVH loader unchanged.
    let start_info = match unsafe { StartInfo::from_paddr(start_info_paddr) } {
        Ok(info) => info,
        Err(e) => fail(
            ExitCode::Unsupported,
            format_args!("not started through PVH: {e}"),
        ),
    };
    let cmdline = match start_info.cmdline() {
        Ok(c) => c,
        Err(e) => fail(ExitCode::BadArguments, format_args!("{e}")),
    };
    let mut args = match args::parse(cmdline) {
        Ok(a) => a,
        Err(e) => fail(ExitCode::BadArguments, format_args!("{e}")),
    };
    if args.help {
        let _ = platform::Console.write_str(args::HELP);
        info!("exit: {}", ExitCode::Clean);
        exit(ExitCode::Clean);
    }
    log::set_max_level(args.verb.level_filter());
    info!(
        "boot arguments: {}",
        if cmdline.trim().is_empty() {
            "(none)"
        } else {
            cmdline.trim()
        }
    );

    let features = init::cpu();
    let tsc_hz = init::clocks(&features, &args);
    platform::arm_power_button(start_info);
    init::memory(start_info, &features);
    init::entropy(&features);
    init::timer(tsc_hz);
    init::prove_crypto();

    selftest::run(&args);

    let (config, mut network) = devices::start(cmdline, &mut args);
    if let (Some(text), Some(devices::NetRole::Router(network))) =
        (config.as_deref(), network.as_mut())
    {
        network.attach_tunnel(text, &args);
    }
    MainLoop::new(args, network).run()
}

/// What one pass of the main loop asks for next.
enum Next {
    /// Sleep until this monotonic time (microseconds) or the next interrupt.
    WakeAt(u64),
    /// Leave the VM.
    Shutdown(ExitCode),
}

/// The main loop's state. Devices, the OpenVPN engine and the router join here as fields and get polled
/// in [`MainLoop::poll`]; each reports its own next deadline and the loop sleeps until the earliest.
struct MainLoop {
    args: BootArgs,
    next_reseed: u64,
    /// Idle-timer self-test: when it was armed and for when (until devices give the loop real work).
    idle_probe: Option<(u64, u64)>,
    /// The network of the config's role (`devices::start`): the router's two NICs, or the server's.
    network: Option<devices::NetRole>,
}

impl MainLoop {
    fn new(args: BootArgs, network: Option<devices::NetRole>) -> MainLoop {
        let now = clock::now_us();
        MainLoop {
            args,
            next_reseed: now + RESEED_INTERVAL_US,
            idle_probe: Some((now, now + 10_000)),
            network,
        }
    }

    fn run(mut self) -> ! {
        loop {
            let now = clock::now_us();
            match self.poll(now) {
                Next::WakeAt(deadline) => {
                    let busy_poll_us = self.args.busy_poll_us;
                    if deadline > clock::now_us() {
                        let halt = match &mut self.network {
                            Some(devices::NetRole::Router(n)) => {
                                n.prepare_halt(deadline, busy_poll_us)
                            }
                            Some(devices::NetRole::Server(s)) => s.prepare_halt(),
                            None => true,
                        };
                        if !halt {
                            continue;
                        }
                    }
                    idle::wait_until(deadline)
                }
                Next::Shutdown(code) => {
                    let (used, free) = heap::usage();
                    info!("heap: {} KiB used, {} MiB free", used >> 10, free >> 20);
                    info!("exit: {code}");
                    exit(code)
                }
            }
        }
    }

    /// One pass: do everything that is due at `now`, return what comes next.
    fn poll(&mut self, now: u64) -> Next {
        let mut deadline = now + idle::MAX_IDLE_US;

        if now >= self.next_reseed {
            if let Err(e) = entropy::reseed() {
                warn!("entropy: reseed failed: {e}");
            }
            self.next_reseed = now + RESEED_INTERVAL_US;
        }
        deadline = deadline.min(self.next_reseed);

        if let Some(request) = platform::shutdown_request() {
            info!("host requests {request:?}: shutting down");
            let public = match &mut self.network {
                Some(devices::NetRole::Router(n)) => {
                    n.shutdown(Instant::from_micros(i64::try_from(now).unwrap_or(i64::MAX)));
                    Some(n.public_nic())
                }
                Some(devices::NetRole::Server(s)) => {
                    s.shutdown(now);
                    Some(s.public_nic())
                }
                None => None,
            };
            // The goodbye (explicit exit notification) must leave before the VMM stops the VM: wait,
            // bounded, until the public NIC has sent what is queued.
            if let Some(nic) = public {
                let until = clock::now_us() + SHUTDOWN_DRAIN_US;
                while nic.tx_in_flight() {
                    if clock::now_us() >= until {
                        warn!("shutdown: frames still queued on the public NIC after {SHUTDOWN_DRAIN_US} us");
                        break;
                    }
                    core::hint::spin_loop();
                }
            }
            return Next::Shutdown(ExitCode::Clean);
        }
        // After the shutdown check, which reads the xenstore watches and hands netback's on.
        match &mut self.network {
            Some(devices::NetRole::Router(n)) => platform::poll_host_services(n),
            _ => platform::poll_host_services(&mut platform::NoPorts),
        }

        if let Some(network) = &mut self.network {
            let at = match network {
                devices::NetRole::Router(n) => n.run(now),
                devices::NetRole::Server(s) => s.run(now),
            };
            if let Some(at) = at {
                deadline = deadline.min(at);
            }
            return Next::WakeAt(deadline);
        }

        // Until devices join the loop there is nothing to serve: show one timed halt, then shut down.
        if let Some((armed, due)) = self.idle_probe {
            if now < due {
                return Next::WakeAt(deadline.min(due));
            }
            info!(
                "idle: woke from hlt {} us after arming a {} us deadline",
                now - armed,
                due - armed
            );
            self.idle_probe = None;
            info!("nothing to do yet (no devices): shutting down");
            return Next::Shutdown(ExitCode::Clean);
        }
        Next::WakeAt(deadline)
    }
}
