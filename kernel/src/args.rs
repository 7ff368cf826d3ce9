//! Boot arguments: the PVH command line (QEMU `-append`) parsed into [`BootArgs`].
//!
//! Layer: pure parsing, no I/O, unit-tested on the host. Names follow MirageVPN's router unikernel
//! (`--ipv4`, `--private-ipv4`, `--nat` ...) so its users can switch without relearning, plus OpenVPN's
//! `--verb`. Every argument is `--name` or `--name=value`; anything else is an error naming the argument,
//! except the `virtio_mmio.device=` entries QEMU's `microvm` machine appends to the command line by itself.

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

/// The `--help` text.
pub const HELP: &str = "\
oxvpn: OpenVPN-compatible VPN router unikernel. Boot arguments (QEMU -append \"...\"):
  --ipv4=CIDR                  static address of the service (public) NIC, e.g. 10.0.0.2/24
  --ipv4-gateway=IP            default gateway of the service NIC
  --dhcp | --no-dhcp           configure the service NIC by DHCP (default: on unless --ipv4 is given)
  --resolver=IP                DNS resolver for `remote` host names (default: from DHCP)
  --private-ipv4=CIDR          address and prefix of the private (LAN) NIC, e.g. 10.8.0.3/24
  --private-ipv4-gateway=IP    address LAN hosts use as their gateway (default: the --private-ipv4 address)
  --nat | --no-nat             source-NAT LAN traffic to the tunnel address (default: on)
  --nat-table-size=N           NAT table entries (default 2048)
  --service-mac=MAC            pick the service NIC by its MAC (default: the first virtio-net NIC)
  --private-mac=MAC            pick the private NIC by its MAC (default: the second one)
  --client=MAC,IPV4[,GATEWAY]  a client port (Qubes-style): the NIC with this MAC is one client's link;
                               the client uses IPV4 (static, or by DHCP on that port) and GATEWAY as its
                               gateway (default: .1 of IPV4's /24); repeatable, at most 64
  --virtual-dns=IP[,IP]        addresses client ports' DNS goes to (default 10.139.1.1,10.139.1.2);
                               per-client firewall rules: a <qubes-firewall> block on the config disk
  --verb=N                     log verbosity 0..11 as OpenVPN's --verb (default 3)
  --busy-poll-us=N             poll the NICs for up to N us (0..1000) before halting (default 0)
  --qubesdb                    Xen: read QubesDB from dom0 (vchan port 111); without --ipv4 the public
                               address, gateway and resolver come from /qubes-ip, /qubes-gateway,
                               /qubes-primary-dns
  --vif-gateway=IP             Xen: the gateway clients of netback vifs use (default: /qubes-ip with
                               --qubesdb, as Qubes does, else .1 of the client's /24)
  --wall-clock=UNIX            the time now in Unix seconds (e.g. $(date +%s)), for hosts without a CMOS RTC,
                               kvmclock or Xen wall clock (Firecracker without kvmclock); wins over them
  --tsc-khz=KHZ                the TSC rate, for hosts that state it nowhere the image looks (no CPUID leaf
                               0x40000010/0x15/0x16, no kvmclock, no PIT); wins over them
  --help                       print this text and shut down
Test only:
  --test-fault                 trigger a CPU exception (page fault) after boot
  --test-panic                 panic after boot
  --test-stack-overflow        recurse until the stack guard page faults
";

/// Longest `--busy-poll-us`.
pub const MAX_BUSY_POLL_US: u32 = 1000;

/// Default `--nat-table-size` (MirageVPN's).
pub const DEFAULT_NAT_TABLE_SIZE: usize = 2048;

/// Most `--client` ports.
pub const MAX_CLIENTS: usize = 64;

const NO_CLIENT: ClientPort = ClientPort {
    mac: Mac([0; 6]),
    address: Ipv4Addr::UNSPECIFIED,
    gateway: Ipv4Addr::UNSPECIFIED,
};

/// Qubes' virtual DNS addresses, the default `--virtual-dns`.
pub const QUBES_VIRTUAL_DNS: [Ipv4Addr; 2] =
    [Ipv4Addr::new(10, 139, 1, 1), Ipv4Addr::new(10, 139, 1, 2)];

/// At most `N` values in place: the boot arguments are parsed before the heap exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<T: Copy, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy, const N: usize> Bounded<T, N> {
    /// Empty, the slots filled with `fill`.
    pub const fn new(fill: T) -> Self {
        Bounded {
            items: [fill; N],
            len: 0,
        }
    }

    /// Appends `item`; false when full.
    pub fn push(&mut self, item: T) -> bool {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = item;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The values.
    pub fn as_slice(&self) -> &[T] {
        self.items.get(..self.len).unwrap_or(&[])
    }
}

impl<T: Copy, const N: usize> core::ops::Deref for Bounded<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

/// `--client=MAC,IPV4[,GATEWAY]`: one client's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPort {
    /// The NIC's MAC address.
    pub mac: Mac,
    /// The client's address (its only allowed source).
    pub address: Ipv4Addr,
    /// The gateway address the client uses.
    pub gateway: Ipv4Addr,
}

impl FromStr for ClientPort {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let mut parts = s.split(',');
        let mac = parts.next().ok_or(())?.parse()?;
        let address: Ipv4Addr = parts.next().ok_or(())?.parse().map_err(|_| ())?;
        let gateway = match parts.next() {
            Some(g) => g.parse().map_err(|_| ())?,
            None => {
                let [a, b, c, _] = address.octets();
                Ipv4Addr::new(a, b, c, 1)
            }
        };
        if parts.next().is_some()
            || gateway == address
            || address.is_unspecified()
            || address.is_broadcast()
            || address.is_multicast()
            || gateway.is_unspecified()
            || gateway.is_multicast()
            || gateway.is_broadcast()
        {
            return Err(());
        }
        Ok(ClientPort {
            mac,
            address,
            gateway,
        })
    }
}

/// An IPv4 address with a prefix length, as written `a.b.c.d/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address (host part kept).
    pub address: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix_len: u8,
}

impl FromStr for Ipv4Cidr {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (addr, len) = s.split_once('/').ok_or(())?;
        let prefix_len: u8 = len.parse().map_err(|_| ())?;
        if prefix_len > 32 || len.starts_with('+') {
            return Err(());
        }
        Ok(Ipv4Cidr {
            address: addr.parse().map_err(|_| ())?,
            prefix_len,
        })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// An Ethernet MAC address, written `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in out.iter_mut() {
            let part = parts.next().ok_or(())?;
            if part.len() != 2 {
                return Err(());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| ())?;
        }
        if parts.next().is_some() {
            return Err(());
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// OpenVPN's `--verb` level, 0..=11.
///
/// | verb | shown                       | `log` level |
/// |------|-----------------------------|-------------|
/// | 0    | fatal errors only           | Error       |
/// | 1-2  | + non-fatal problems        | Warn        |
/// | 3-4  | + normal operation (default)| Info        |
/// | 5-8  | + per-connection details    | Debug       |
/// | 9-11 | + per-packet tracing        | Trace       |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verb(u8);

impl Verb {
    /// The highest level OpenVPN accepts.
    pub const MAX: u8 = 11;
    /// The default, as OpenVPN's sample configs use.
    pub const DEFAULT: Verb = Verb(3);

    /// `Some` when `level` is 0..=11.
    pub fn new(level: u8) -> Option<Verb> {
        (level <= Self::MAX).then_some(Verb(level))
    }

    /// The numeric level.
    pub fn level(self) -> u8 {
        self.0
    }

    /// The `log` filter this verbosity maps to (table above).
    pub fn level_filter(self) -> log::LevelFilter {
        match self.0 {
            0 => log::LevelFilter::Error,
            1..=2 => log::LevelFilter::Warn,
            3..=4 => log::LevelFilter::Info,
            5..=8 => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        }
    }
}

/// Parsed boot arguments. `None` means "not given": the consumer applies the documented default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootArgs {
    /// `--ipv4`: static service address.
    pub ipv4: Option<Ipv4Cidr>,
    /// `--ipv4-gateway`.
    pub ipv4_gateway: Option<Ipv4Addr>,
    /// `--dhcp` / `--no-dhcp`.
    pub dhcp: Option<bool>,
    /// `--resolver`.
    pub resolver: Option<Ipv4Addr>,
    /// `--private-ipv4`.
    pub private_ipv4: Option<Ipv4Cidr>,
    /// `--private-ipv4-gateway`.
    pub private_ipv4_gateway: Option<Ipv4Addr>,
    /// `--nat` / `--no-nat` (default on: the server then needs no `iroute` for the LAN).
    pub nat: bool,
    /// `--nat-table-size`.
    pub nat_table_size: usize,
    /// `--service-mac`.
    pub service_mac: Option<Mac>,
    /// `--private-mac`.
    pub private_mac: Option<Mac>,
    /// `--client`, in order: the client ports.
    pub clients: Bounded<ClientPort, MAX_CLIENTS>,
    /// `--virtual-dns`.
    pub virtual_dns: Bounded<Ipv4Addr, 2>,
    /// `--verb`.
    pub verb: Verb,
    /// `--busy-poll-us`: how long the idle loop polls the NICs before it halts (0: halt at once).
    pub busy_poll_us: u32,
    /// `--qubesdb`: connect to dom0's QubesDB (Xen).
    pub qubesdb: bool,
    /// `--vif-gateway`: the gateway of netback vifs' clients (Xen).
    pub vif_gateway: Option<Ipv4Addr>,
    /// `--wall-clock`: Unix seconds at boot, from the host.
    pub wall_clock: Option<u64>,
    /// `--tsc-khz`: the TSC rate, from the host.
    pub tsc_khz: Option<u32>,
    /// `--help`.
    pub help: bool,
    /// `--test-fault`.
    pub test_fault: bool,
    /// `--test-panic`.
    pub test_panic: bool,
    /// `--test-stack-overflow`.
    pub test_stack_overflow: bool,
}

impl Default for BootArgs {
    fn default() -> Self {
        BootArgs {
            ipv4: None,
            ipv4_gateway: None,
            dhcp: None,
            resolver: None,
            private_ipv4: None,
            private_ipv4_gateway: None,
            vif_gateway: None,
            nat: true,
            nat_table_size: DEFAULT_NAT_TABLE_SIZE,
            service_mac: None,
            private_mac: None,
            clients: Bounded::new(NO_CLIENT),
            virtual_dns: Bounded {
                items: QUBES_VIRTUAL_DNS,
                len: 2,
            },
            verb: Verb::DEFAULT,
            busy_poll_us: 0,
            qubesdb: false,
            wall_clock: None,
            tsc_khz: None,
            help: false,
            test_fault: false,
            test_panic: false,
            test_stack_overflow: false,
        }
    }
}

impl BootArgs {
    /// Whether the service NIC uses DHCP: `--dhcp`/`--no-dhcp` if given, else when there is no `--ipv4`.
    pub fn service_dhcp(&self) -> bool {
        self.dhcp.unwrap_or(self.ipv4.is_none())
    }
}

/// A boot argument that could not be used. Borrowed parts point into the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgError<'a> {
    /// Not an argument oxvpn knows.
    Unknown(&'a str),
    /// `--name` needs `=value`.
    MissingValue(&'static str),
    /// A flag was given `=value`.
    UnexpectedValue(&'static str),
    /// The value does not parse as `expected`.
    Invalid {
        name: &'static str,
        value: &'a str,
        expected: &'static str,
    },
    /// Two arguments that cannot go together.
    Conflict(&'static str, &'static str),
}

impl fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Unknown(arg) => write!(f, "unknown boot argument '{arg}' (see --help)"),
            ArgError::MissingValue(name) => {
                write!(f, "boot argument {name} needs a value: {name}=...")
            }
            ArgError::UnexpectedValue(name) => write!(f, "boot argument {name} takes no value"),
            ArgError::Invalid {
                name,
                value,
                expected,
            } => {
                write!(f, "boot argument {name}={value}: expected {expected}")
            }
            ArgError::Conflict(a, b) => {
                write!(f, "boot arguments {a} and {b} cannot be used together")
            }
        }
    }
}

const FLAGS: &[&str] = &[
    "--dhcp",
    "--no-dhcp",
    "--nat",
    "--no-nat",
    "--help",
    "--qubesdb",
    "--test-fault",
    "--test-panic",
    "--test-stack-overflow",
];
const OPTIONS: &[&str] = &[
    "--ipv4",
    "--ipv4-gateway",
    "--resolver",
    "--private-ipv4",
    "--private-ipv4-gateway",
    "--nat-table-size",
    "--service-mac",
    "--private-mac",
    "--client",
    "--virtual-dns",
    "--verb",
    "--busy-poll-us",
    "--wall-clock",
    "--tsc-khz",
    "--vif-gateway",
];

fn value<'a, T: FromStr>(
    name: &'static str,
    v: &'a str,
    expected: &'static str,
) -> Result<T, ArgError<'a>> {
    v.parse().map_err(|_| ArgError::Invalid {
        name,
        value: v,
        expected,
    })
}

/// A number in `range`, else the same error as a value that does not parse.
fn ranged<'a, T: FromStr + PartialOrd>(
    name: &'static str,
    v: &'a str,
    range: core::ops::RangeInclusive<T>,
    expected: &'static str,
) -> Result<T, ArgError<'a>> {
    value(name, v, expected).and_then(|n: T| {
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(ArgError::Invalid {
                name,
                value: v,
                expected,
            })
        }
    })
}

/// Parses a whole command line. Later arguments override earlier ones, as on OpenVPN's command line.
pub fn parse(cmdline: &str) -> Result<BootArgs, ArgError<'_>> {
    let mut args = BootArgs::default();
    for token in cmdline.split_ascii_whitespace() {
        if token.starts_with("virtio_mmio.device=") {
            continue; // added by QEMU microvm; the virtio-mmio driver reads it
        }
        let (name, val) = match token.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (token, None),
        };
        if let Some(&flag) = FLAGS.iter().find(|&&f| f == name) {
            if val.is_some() {
                return Err(ArgError::UnexpectedValue(flag));
            }
            match flag {
                "--dhcp" => args.dhcp = Some(true),
                "--no-dhcp" => args.dhcp = Some(false),
                "--nat" => args.nat = true,
                "--no-nat" => args.nat = false,
                "--help" => args.help = true,
                "--qubesdb" => args.qubesdb = true,
                "--test-fault" => args.test_fault = true,
                "--test-panic" => args.test_panic = true,
                _ => args.test_stack_overflow = true,
            }
            continue;
        }
        let Some(&opt) = OPTIONS.iter().find(|&&o| o == name) else {
            return Err(ArgError::Unknown(token));
        };
        let v = val
            .filter(|v| !v.is_empty())
            .ok_or(ArgError::MissingValue(opt))?;
        match opt {
            "--ipv4" => {
                args.ipv4 = Some(value(opt, v, "an IPv4 address/prefix such as 10.0.0.2/24")?)
            }
            "--ipv4-gateway" => args.ipv4_gateway = Some(value(opt, v, "an IPv4 address")?),
            "--vif-gateway" => args.vif_gateway = Some(value(opt, v, "an IPv4 address")?),
            "--resolver" => args.resolver = Some(value(opt, v, "an IPv4 address")?),
            "--private-ipv4" => {
                args.private_ipv4 =
                    Some(value(opt, v, "an IPv4 address/prefix such as 10.8.0.3/24")?)
            }
            "--private-ipv4-gateway" => {
                args.private_ipv4_gateway = Some(value(opt, v, "an IPv4 address")?)
            }
            "--nat-table-size" => {
                args.nat_table_size = ranged(opt, v, 1..=1 << 20, "a number from 1 to 1048576")?
            }
            "--service-mac" => {
                args.service_mac = Some(value(opt, v, "a MAC address such as 52:54:00:12:34:56")?)
            }
            "--private-mac" => {
                args.private_mac = Some(value(opt, v, "a MAC address such as 52:54:00:12:34:56")?)
            }
            "--client" => {
                let expected = "MAC,CLIENT_IPV4[,GATEWAY_IPV4] (two different unicast addresses)";
                let client: ClientPort = value(opt, v, expected)?;
                if args
                    .clients
                    .iter()
                    .any(|c| c.mac == client.mac || c.address == client.address)
                {
                    return Err(ArgError::Invalid {
                        name: opt,
                        value: v,
                        expected: "a MAC and a client address no other --client uses",
                    });
                }
                if !args.clients.push(client) {
                    return Err(ArgError::Invalid {
                        name: opt,
                        value: v,
                        expected: "at most 64 --client arguments",
                    });
                }
            }
            "--virtual-dns" => {
                let expected = "one or two IPv4 addresses, comma separated";
                let mut list = Bounded::new(Ipv4Addr::UNSPECIFIED);
                for a in v.split(',') {
                    if !list.push(value::<Ipv4Addr>(opt, a, expected)?) {
                        return Err(ArgError::Invalid {
                            name: opt,
                            value: v,
                            expected,
                        });
                    }
                }
                args.virtual_dns = list;
            }
            "--wall-clock" => {
                // 2000-01-01 .. 2200-01-01: a clock outside is a mistake (milliseconds, or 0), not a time.
                let expected = "Unix seconds between 946684800 (2000) and 7258118400 (2200)";
                args.wall_clock = Some(ranged(opt, v, 946_684_800..=7_258_118_400, expected)?);
            }
            "--tsc-khz" => {
                let expected = "a TSC rate in kHz from 10000 (10 MHz) to 100000000 (100 GHz)";
                args.tsc_khz = Some(ranged(opt, v, 10_000..=100_000_000, expected)?);
            }
            "--busy-poll-us" => {
                let expected = "a number of microseconds from 0 to 1000";
                args.busy_poll_us = ranged(opt, v, 0..=MAX_BUSY_POLL_US, expected)?;
            }
            _ => {
                let level: u8 = value(opt, v, "a level from 0 to 11")?;
                args.verb = Verb::new(level).ok_or(ArgError::Invalid {
                    name: opt,
                    value: v,
                    expected: "a level from 0 to 11",
                })?;
            }
        }
    }
    if args.dhcp == Some(true) && args.ipv4.is_some() {
        return Err(ArgError::Conflict("--dhcp", "--ipv4"));
    }
    if let (Some(mac), false) = (args.private_mac, args.clients.is_empty()) {
        if args.clients.iter().any(|c| c.mac == mac) {
            return Err(ArgError::Conflict(
                "--private-mac",
                "--client with the same MAC",
            ));
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_gives_defaults() {
        let a = parse("").unwrap();
        assert_eq!(a, BootArgs::default());
        assert_eq!(a.verb.level(), 3);
        assert_eq!(a.nat_table_size, 2048);
        assert!(a.nat, "NAT is on by default");
        assert!(a.service_dhcp());
    }

    #[test]
    fn client_ports() {
        let a = parse(
            "--client=52:54:00:00:00:11,10.137.0.11 --client=52:54:00:00:00:12,10.137.0.12,10.137.0.2 --virtual-dns=10.139.1.3",
        )
        .unwrap();
        assert_eq!(
            *a.clients,
            [
                ClientPort {
                    mac: Mac([0x52, 0x54, 0, 0, 0, 0x11]),
                    address: Ipv4Addr::new(10, 137, 0, 11),
                    gateway: Ipv4Addr::new(10, 137, 0, 1),
                },
                ClientPort {
                    mac: Mac([0x52, 0x54, 0, 0, 0, 0x12]),
                    address: Ipv4Addr::new(10, 137, 0, 12),
                    gateway: Ipv4Addr::new(10, 137, 0, 2),
                }
            ]
        );
        assert_eq!(*a.virtual_dns, [Ipv4Addr::new(10, 139, 1, 3)]);
        assert_eq!(*parse("").unwrap().virtual_dns, QUBES_VIRTUAL_DNS);
        for bad in [
            "--client=52:54:00:00:00:11",
            "--client=52:54:00:00:00:11,10.137.0.1",
            "--client=52:54:00:00:00:11,10.137.0.5,10.137.0.5",
            "--client=52:54:00:00:00:11,10.137.0.5,10.137.0.1,x",
            "--client=52:54:00:00:00:11,255.255.255.255,10.137.0.1",
            "--client=zz,10.137.0.5",
            "--client=52:54:00:00:00:11,10.137.0.5 --client=52:54:00:00:00:11,10.137.0.6",
            "--client=52:54:00:00:00:11,10.137.0.5 --client=52:54:00:00:00:12,10.137.0.5",
            "--virtual-dns=1.1.1.1,2.2.2.2,3.3.3.3",
            "--virtual-dns=1.1.1",
            "--client=52:54:00:00:00:11,10.137.0.5 --private-mac=52:54:00:00:00:11",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let many: alloc::string::String = (0..65)
            .map(|i| alloc::format!("--client=52:54:00:00:01:{i:02x},10.137.1.{} ", i + 10))
            .collect();
        assert!(parse(&many).is_err());
    }

    #[test]
    fn miragevpn_example_line() {
        let a = parse(
            "--private-ipv4=10.8.0.3/24 --private-ipv4-gateway=10.8.0.2 --ipv4=10.0.0.2/24 --ipv4-gateway=10.0.0.1",
        )
        .unwrap();
        assert_eq!(
            a.private_ipv4,
            Some(Ipv4Cidr {
                address: Ipv4Addr::new(10, 8, 0, 3),
                prefix_len: 24
            })
        );
        assert_eq!(a.private_ipv4_gateway, Some(Ipv4Addr::new(10, 8, 0, 2)));
        assert_eq!(a.ipv4.unwrap().to_string(), "10.0.0.2/24");
        assert_eq!(a.ipv4_gateway, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(!a.service_dhcp());
    }

    #[test]
    fn flags_and_options() {
        let a = parse(
            "  --nat --nat-table-size=64 --verb=11 --resolver=9.9.9.9 --service-mac=52:54:00:AB:cd:01 \
             --private-mac=02:00:00:00:00:02 --no-dhcp --test-fault --test-panic --test-stack-overflow --help",
        )
        .unwrap();
        assert!(a.nat && a.test_fault && a.test_panic && a.test_stack_overflow && a.help);
        assert_eq!(a.nat_table_size, 64);
        assert_eq!(a.verb.level_filter(), log::LevelFilter::Trace);
        assert_eq!(a.resolver, Some(Ipv4Addr::new(9, 9, 9, 9)));
        assert_eq!(a.service_mac.unwrap().to_string(), "52:54:00:ab:cd:01");
        assert_eq!(a.private_mac, Some(Mac([2, 0, 0, 0, 0, 2])));
        assert_eq!(a.dhcp, Some(false));
        assert!(!parse("--nat --no-nat").unwrap().nat, "later arguments win");
    }

    #[test]
    fn skips_microvm_virtio_mmio_entries() {
        let a = parse(
            "--verb=4 virtio_mmio.device=512@0xfeb00e00:12 virtio_mmio.device=512@0xfeb00c00:11",
        )
        .unwrap();
        assert_eq!(a.verb.level(), 4);
    }

    #[test]
    fn clock_arguments() {
        let a = parse("--wall-clock=1764921600 --tsc-khz=2995200").unwrap();
        assert_eq!(a.wall_clock, Some(1_764_921_600));
        assert_eq!(a.tsc_khz, Some(2_995_200));
        for bad in [
            "--wall-clock=0",
            "--wall-clock=1764921600000",
            "--wall-clock=yesterday",
            "--tsc-khz=0",
            "--tsc-khz=2995200000",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad.split('=').next().unwrap()), "{bad}: {e}");
        }
    }

    #[test]
    fn verb_mapping() {
        let f = |v| Verb::new(v).unwrap().level_filter();
        assert_eq!(f(0), log::LevelFilter::Error);
        assert_eq!(f(1), log::LevelFilter::Warn);
        assert_eq!(f(3), log::LevelFilter::Info);
        assert_eq!(f(4), log::LevelFilter::Info);
        assert_eq!(f(5), log::LevelFilter::Debug);
        assert_eq!(f(9), log::LevelFilter::Trace);
        assert_eq!(Verb::new(12), None);
    }

    #[test]
    fn errors_name_the_argument() {
        assert_eq!(parse("--bogus"), Err(ArgError::Unknown("--bogus")));
        assert_eq!(parse("verb=3"), Err(ArgError::Unknown("verb=3")));
        assert_eq!(parse("--ipv4"), Err(ArgError::MissingValue("--ipv4")));
        assert_eq!(parse("--ipv4="), Err(ArgError::MissingValue("--ipv4")));
        assert_eq!(parse("--nat=yes"), Err(ArgError::UnexpectedValue("--nat")));
        assert!(matches!(
            parse("--verb=12"),
            Err(ArgError::Invalid {
                name: "--verb",
                value: "12",
                ..
            })
        ));
        assert!(matches!(
            parse("--verb=-1"),
            Err(ArgError::Invalid { name: "--verb", .. })
        ));
        assert!(matches!(
            parse("--ipv4=10.0.0.2"),
            Err(ArgError::Invalid { name: "--ipv4", .. })
        ));
        assert!(matches!(
            parse("--ipv4=10.0.0.2/33"),
            Err(ArgError::Invalid { name: "--ipv4", .. })
        ));
        assert!(matches!(
            parse("--ipv4=10.0.0.256/24"),
            Err(ArgError::Invalid { .. })
        ));
        assert!(matches!(
            parse("--ipv4-gateway=10.0.0"),
            Err(ArgError::Invalid { .. })
        ));
        assert!(matches!(
            parse("--service-mac=52:54:00:12:34"),
            Err(ArgError::Invalid { .. })
        ));
        assert!(matches!(
            parse("--service-mac=52:54:00:12:34:56:78"),
            Err(ArgError::Invalid { .. })
        ));
        assert!(matches!(
            parse("--private-mac=5:54:00:12:34:56"),
            Err(ArgError::Invalid { .. })
        ));
        assert!(matches!(
            parse("--nat-table-size=0"),
            Err(ArgError::Invalid { .. })
        ));
        assert!(matches!(
            parse("--nat-table-size=99999999999999999999"),
            Err(ArgError::Invalid { .. })
        ));
        assert_eq!(
            parse("--dhcp --ipv4=10.0.0.2/24"),
            Err(ArgError::Conflict("--dhcp", "--ipv4"))
        );
        assert_eq!(
            parse("--verb=x").unwrap_err().to_string(),
            "boot argument --verb=x: expected a level from 0 to 11"
        );
        assert_eq!(parse("--busy-poll-us=50").unwrap().busy_poll_us, 50);
        assert_eq!(parse("--busy-poll-us=0").unwrap().busy_poll_us, 0);
        assert_eq!(
            parse("--vif-gateway=10.137.0.1").unwrap().vif_gateway,
            Some(Ipv4Addr::new(10, 137, 0, 1))
        );
        assert!(parse("--vif-gateway=x").is_err());
        assert_eq!(
            parse("--busy-poll-us=1001").unwrap_err().to_string(),
            "boot argument --busy-poll-us=1001: expected a number of microseconds from 0 to 1000"
        );
        assert!(matches!(
            parse("--busy-poll-us=-1"),
            Err(ArgError::Invalid { .. })
        ));
        assert_eq!(
            parse("--frob").unwrap_err().to_string(),
            "unknown boot argument '--frob' (see --help)"
        );
    }

    #[test]
    fn help_lists_every_argument() {
        for name in FLAGS.iter().chain(OPTIONS) {
            assert!(HELP.contains(name), "{name} missing from HELP");
        }
    }
}
