//! Time: the monotonic clock (TSC), its calibration (hypervisor CPUID leaf or the PIT), and the CMOS RTC.
//!
//! Layer: clock hardware plus pure conversions (unit-tested on the host). [`now_us`] is the one clock the
//! kernel hands to the engine and the network stack as `now`; nothing below the kernel reads it by itself.
//!
//! - Monotonic: microseconds since [`start`], from the TSC. Its rate ([`tsc_frequency`]): the `--tsc-khz`
//!   boot argument, the hypervisor timing leaf CPUID 0x40000010 (EAX = TSC kHz), kvmclock, CPUID leaves
//!   0x15/0x16, and as the last resort counting TSC ticks while PIT channel 0 counts 10 ms (1.193182 MHz).
//!   TCG has no timing leaf and no kvmclock, but its TSC follows the host's, so the PIT calibration holds.
//! - Wall clock: set once at boot by the platform ([`set_wall_clock`]): the `--wall-clock` boot argument,
//!   kvmclock, Xen's shared info or the CMOS RTC (MC146818, [`read_rtc`]); [`unix_time_now`] adds the
//!   monotonic time since. Certificate validity checks need it; there is no NTP (docs/HOSTS.md says why).

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::cpu::{inb, outb, rdtsc, Features};

/// Where the TSC rate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrequencySource {
    /// The `--tsc-khz` boot argument: the host said so.
    BootArgument,
    /// CPUID leaf 0x40000010 (EAX: TSC kHz), offered by KVM hosts with an invariant TSC, Cloud Hypervisor
    /// and VMware.
    HypervisorLeaf,
    /// kvmclock's pvclock record (`tsc_to_system_mul`, `tsc_shift`).
    Kvmclock,
    /// CPUID leaf 0x15: crystal clock times the TSC/crystal ratio.
    CrystalLeaf,
    /// CPUID leaf 0x16: the processor base frequency (nominal, MHz granularity).
    BaseFrequencyLeaf,
    /// Counted against PIT channel 0.
    Pit,
}

impl FrequencySource {
    /// The source's name for the log.
    pub fn name(self) -> &'static str {
        match self {
            FrequencySource::BootArgument => "the --tsc-khz boot argument",
            FrequencySource::HypervisorLeaf => "hypervisor CPUID leaf 0x40000010",
            FrequencySource::Kvmclock => "kvmclock",
            FrequencySource::CrystalLeaf => "CPUID leaf 0x15 (crystal ratio)",
            FrequencySource::BaseFrequencyLeaf => "CPUID leaf 0x16 (base frequency)",
            FrequencySource::Pit => "PIT calibration",
        }
    }
}

impl fmt::Display for FrequencySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The TSC rate CPUID states, best first: the hypervisor timing leaf, then leaf 0x15 (with the crystal
/// rate from the leaf, or derived from leaf 0x16 as Intel documents for CPUs that leave it 0), then leaf
/// 0x16's base frequency. None when the CPU states none (TCG, AMD hosts without a hypervisor leaf).
pub fn cpuid_frequency(features: &Features) -> Option<(u64, FrequencySource)> {
    let plausible = |hz: u64| (10_000_000..=100_000_000_000).contains(&hz);
    if let Some(khz) = features.hypervisor_tsc_khz {
        let hz = u64::from(khz) * 1000;
        if plausible(hz) {
            return Some((hz, FrequencySource::HypervisorLeaf));
        }
    }
    if let Some((denominator, numerator, crystal_hz)) = features.tsc_crystal {
        let crystal = match (crystal_hz, features.base_mhz) {
            (0, Some(mhz)) => {
                u64::from(mhz) * 1_000_000 * u64::from(denominator) / u64::from(numerator)
            }
            (hz, _) => u64::from(hz),
        };
        let hz = crystal * u64::from(numerator) / u64::from(denominator.max(1));
        if plausible(hz) {
            return Some((hz, FrequencySource::CrystalLeaf));
        }
    }
    let hz = u64::from(features.base_mhz?) * 1_000_000;
    plausible(hz).then_some((hz, FrequencySource::BaseFrequencyLeaf))
}

/// Why a clock could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockError {
    /// PIT calibration measured an implausible TSC rate (Hz): no PIT, or no usable TSC.
    Calibration(u64),
    /// No source stated the TSC rate: no boot argument, CPUID leaf or kvmclock, and the PIT (the last
    /// resort) measured this many Hz.
    NoSource(u64),
    /// The RTC returned a date that does not exist (no RTC, or garbage).
    RtcInvalid,
    /// The RTC stayed in its update cycle.
    RtcBusy,
}

impl fmt::Display for ClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockError::Calibration(hz) => {
                write!(f, "TSC calibration against the PIT gave {hz} Hz")
            }
            ClockError::NoSource(hz) => write!(
                f,
                "no TSC rate: no --tsc-khz boot argument, no CPUID leaf 0x40000010, 0x15 or 0x16, no \
                 kvmclock, and the PIT does not count (calibration gave {hz} Hz)"
            ),
            ClockError::RtcInvalid => f.write_str("CMOS RTC returned an invalid date"),
            ClockError::RtcBusy => f.write_str("CMOS RTC stayed in its update cycle"),
        }
    }
}

/// Converts TSC ticks to microseconds without division: `us = ticks * mult >> 32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TscScale {
    mult: u64,
}

impl TscScale {
    /// Scale for a TSC running at `hz` (>= 1 MHz).
    pub fn new(hz: u64) -> TscScale {
        TscScale {
            mult: ((1_000_000u128 << 32) / u128::from(hz.max(1))) as u64,
        }
    }

    /// Microseconds in `ticks` TSC ticks.
    pub fn ticks_to_us(&self, ticks: u64) -> u64 {
        ((u128::from(ticks) * u128::from(self.mult)) >> 32) as u64
    }
}

static TSC_BASE: AtomicU64 = AtomicU64::new(0);
static TSC_MULT: AtomicU64 = AtomicU64::new(0);
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static BOOT_UNIX_SECS: AtomicU64 = AtomicU64::new(0);
static BOOT_UNIX_AT_US: AtomicU64 = AtomicU64::new(0);

/// Determines the TSC rate: the boot argument, then what CPUID states ([`cpuid_frequency`]), then kvmclock's
/// rate (`kvmclock_hz`, when the caller enabled it), then 10 ms against the PIT as the last resort.
pub fn tsc_frequency(
    features: &Features,
    argument_khz: Option<u32>,
    kvmclock_hz: Option<u64>,
) -> Result<(u64, FrequencySource), ClockError> {
    if let Some(khz) = argument_khz {
        return Ok((u64::from(khz) * 1000, FrequencySource::BootArgument));
    }
    // The timing leaf is exact; kvmclock next (also exact), then the crystal and base-frequency leaves.
    match (cpuid_frequency(features), kvmclock_hz) {
        (Some(found @ (_, FrequencySource::HypervisorLeaf)), _) => return Ok(found),
        (_, Some(hz)) => return Ok((hz, FrequencySource::Kvmclock)),
        (Some(found), None) => return Ok(found),
        (None, None) => {}
    }
    pit_calibrate(10)
        .map(|hz| (hz, FrequencySource::Pit))
        .map_err(|e| match e {
            ClockError::Calibration(hz) => ClockError::NoSource(hz),
            other => other,
        })
}

/// PIT input clock, Hz.
const PIT_HZ: u64 = 1_193_182;

/// Reads PIT channel 0's current count (latch command, then low and high byte).
fn pit_channel0_count() -> u16 {
    // SAFETY: PIT mode/command port 0x43 and channel 0 data port 0x40; nothing else uses the PIT.
    unsafe {
        outb(0x43, 0x00); // latch channel 0
        let lo = inb(0x40);
        let hi = inb(0x40);
        u16::from_le_bytes([lo, hi])
    }
}

/// Counts TSC ticks while PIT channel 0 counts `ms` milliseconds.
///
/// Channel 0 is polled through the latch command rather than gating channel 2 through port 0x61, because
/// `microvm` has a PIT but no port 0x61. The channel runs as a rate generator (mode 2) reloading at 65536;
/// its IRQ 0 is masked at the PIC and IOAPIC. Afterwards it is left in one-shot mode, idle.
fn pit_calibrate(ms: u64) -> Result<u64, ClockError> {
    let target = PIT_HZ * ms / 1000;
    // SAFETY: PIT ports, as above.
    unsafe {
        outb(0x43, 0x34); // channel 0, lobyte/hibyte, mode 2, binary
        outb(0x40, 0);
        outb(0x40, 0); // reload value 0 = 65536
    }
    // Start on a counter edge so the partial first tick does not count.
    let first = pit_channel0_count();
    let mut last = first;
    let mut spins = 0u32;
    while last == first {
        last = pit_channel0_count();
        spins += 1;
        if spins > 1_000_000 {
            return Err(ClockError::Calibration(0)); // the counter never moves: no PIT
        }
    }
    let start = rdtsc();
    let mut elapsed = 0u64;
    let mut end = start;
    for _ in 0..100_000_000u32 {
        let now = pit_channel0_count();
        elapsed += u64::from(last.wrapping_sub(now));
        last = now;
        if elapsed >= target {
            end = rdtsc();
            break;
        }
    }
    // SAFETY: PIT ports: mode 0 (one-shot) with count 1 stops the periodic reloads.
    unsafe {
        outb(0x43, 0x30);
        outb(0x40, 1);
        outb(0x40, 0);
    }
    let hz = u64::try_from(
        u128::from(end.wrapping_sub(start)) * u128::from(PIT_HZ) / u128::from(elapsed.max(1)),
    )
    .unwrap_or(0);
    if elapsed < target || !(10_000_000..=100_000_000_000).contains(&hz) {
        return Err(ClockError::Calibration(hz));
    }
    Ok(hz)
}

/// Marks time 0 of the monotonic clock (first thing at boot; [`now_us`] reads 0 until [`set_frequency`]).
pub fn start() {
    TSC_BASE.store(rdtsc(), Ordering::Relaxed);
}

/// Sets the TSC rate, from [`tsc_frequency`]; the clock keeps counting from [`start`].
pub fn set_frequency(tsc_hz: u64) {
    TSC_MULT.store(TscScale::new(tsc_hz).mult, Ordering::Relaxed);
    TSC_HZ.store(tsc_hz, Ordering::Relaxed);
}

/// TSC rate given to [`set_frequency`] (0 before).
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Microseconds since [`start`] (0 before [`set_frequency`]).
pub fn now_us() -> u64 {
    let scale = TscScale {
        mult: TSC_MULT.load(Ordering::Relaxed),
    };
    scale.ticks_to_us(rdtsc().saturating_sub(TSC_BASE.load(Ordering::Relaxed)))
}

/// Records the wall-clock time read at boot.
pub fn set_wall_clock(unix_secs: u64) {
    BOOT_UNIX_AT_US.store(now_us(), Ordering::Relaxed);
    BOOT_UNIX_SECS.store(unix_secs, Ordering::Relaxed);
}

/// Current Unix time in seconds, if the wall clock was set.
pub fn unix_time_now() -> Option<u64> {
    let base = BOOT_UNIX_SECS.load(Ordering::Relaxed);
    (base != 0).then(|| base + (now_us() - BOOT_UNIX_AT_US.load(Ordering::Relaxed)) / 1_000_000)
}

/// A calendar time as the RTC reports it (UTC, as QEMU's default `-rtc base=utc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// Raw RTC registers: seconds, minutes, hours, day of month, month, year, century (0x32), status B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcRegisters {
    pub second: u8,
    pub minute: u8,
    pub hour: u8,
    pub day: u8,
    pub month: u8,
    pub year: u8,
    pub century: u8,
    pub status_b: u8,
}

fn from_bcd(v: u8) -> u8 {
    (v >> 4) * 10 + (v & 0x0f)
}

impl RtcRegisters {
    /// Decodes BCD/binary and 12/24-hour encodings (status B bits 2 and 1) into a checked time.
    pub fn decode(&self) -> Result<RtcTime, ClockError> {
        let binary = self.status_b & 0x04 != 0;
        let h24 = self.status_b & 0x02 != 0;
        let conv = |v: u8| if binary { v } else { from_bcd(v) };
        let pm = self.hour & 0x80 != 0;
        let mut hour = conv(self.hour & 0x7f);
        if !h24 {
            hour %= 12;
            if pm {
                hour += 12;
            }
        }
        let century = match conv(self.century) {
            19..=99 => u16::from(conv(self.century)),
            _ => 20, // no century register: assume 20xx
        };
        let t = RtcTime {
            year: century * 100 + u16::from(conv(self.year)),
            month: conv(self.month),
            day: conv(self.day),
            hour,
            minute: conv(self.minute),
            second: conv(self.second),
        };
        let valid = (1..=12).contains(&t.month)
            && (1..=31).contains(&t.day)
            && t.hour < 24
            && t.minute < 60
            && t.second < 60
            && t.year >= 1970;
        if valid {
            Ok(t)
        } else {
            Err(ClockError::RtcInvalid)
        }
    }
}

impl RtcTime {
    /// Seconds since 1970-01-01T00:00:00Z (proleptic Gregorian, Howard Hinnant's days_from_civil).
    pub fn unix_seconds(&self) -> u64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        u64::try_from(secs).unwrap_or(0)
    }
}

impl fmt::Display for RtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

fn cmos_read(reg: u8) -> u8 {
    // SAFETY: CMOS index/data ports; bit 7 of the index keeps NMIs disabled while we access it.
    unsafe {
        outb(0x70, 0x80 | reg);
        inb(0x71)
    }
}

fn rtc_registers() -> RtcRegisters {
    RtcRegisters {
        second: cmos_read(0x00),
        minute: cmos_read(0x02),
        hour: cmos_read(0x04),
        day: cmos_read(0x07),
        month: cmos_read(0x08),
        year: cmos_read(0x09),
        century: cmos_read(0x32),
        status_b: cmos_read(0x0b),
    }
}

/// Reads the RTC: waits out an update in progress (status A bit 7) and reads until two reads agree.
pub fn read_rtc() -> Result<RtcTime, ClockError> {
    for _ in 0..1000 {
        let mut spins = 0u32;
        while cmos_read(0x0a) & 0x80 != 0 {
            spins += 1;
            if spins > 1_000_000 {
                return Err(ClockError::RtcBusy);
            }
        }
        let a = rtc_registers();
        let b = rtc_registers();
        if a == b {
            return a.decode();
        }
    }
    Err(ClockError::RtcBusy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn cpuid_sources_in_order() {
        let none = Features::default();
        assert_eq!(cpuid_frequency(&none), None);
        // Cloud Hypervisor / KVM with an invariant TSC: the timing leaf wins over everything.
        let leaf = Features {
            hypervisor_tsc_khz: Some(2_100_000),
            tsc_crystal: Some((2, 200, 24_000_000)),
            base_mhz: Some(3000),
            ..none
        };
        assert_eq!(
            cpuid_frequency(&leaf),
            Some((2_100_000_000, FrequencySource::HypervisorLeaf))
        );
        // Intel with a stated crystal: 24 MHz * 200 / 2 = 2.4 GHz.
        let crystal = Features {
            hypervisor_tsc_khz: None,
            ..leaf
        };
        assert_eq!(
            cpuid_frequency(&crystal),
            Some((2_400_000_000, FrequencySource::CrystalLeaf))
        );
        // Crystal rate 0 (Skylake client): derived from the base frequency, 3000 MHz * 2 / 200 = 30 MHz.
        let derived = Features {
            tsc_crystal: Some((2, 200, 0)),
            ..crystal
        };
        assert_eq!(
            cpuid_frequency(&derived),
            Some((3_000_000_000, FrequencySource::CrystalLeaf))
        );
        // Only leaf 0x16.
        let base = Features {
            tsc_crystal: None,
            ..derived
        };
        assert_eq!(
            cpuid_frequency(&base),
            Some((3_000_000_000, FrequencySource::BaseFrequencyLeaf))
        );
        // Nonsense is not a rate: a 0 kHz-ish leaf falls through, a 1 MHz base frequency is refused.
        let nonsense = Features {
            hypervisor_tsc_khz: Some(5),
            base_mhz: Some(1),
            ..none
        };
        assert_eq!(cpuid_frequency(&nonsense), None);
    }

    #[test]
    fn argument_and_kvmclock_precedence() {
        let crystal = Features {
            tsc_crystal: Some((2, 200, 24_000_000)),
            ..Features::default()
        };
        assert_eq!(
            tsc_frequency(&crystal, Some(1_500_000), Some(2_000_000_000)),
            Ok((1_500_000_000, FrequencySource::BootArgument))
        );
        assert_eq!(
            tsc_frequency(&crystal, None, Some(2_000_000_000)),
            Ok((2_000_000_000, FrequencySource::Kvmclock))
        );
        assert_eq!(
            tsc_frequency(&crystal, None, None),
            Ok((2_400_000_000, FrequencySource::CrystalLeaf))
        );
        let leaf = Features {
            hypervisor_tsc_khz: Some(2_100_000),
            ..crystal
        };
        assert_eq!(
            tsc_frequency(&leaf, None, Some(2_000_000_000)),
            Ok((2_100_000_000, FrequencySource::HypervisorLeaf))
        );
    }

    #[test]
    fn scale_is_exact_enough() {
        let s = TscScale::new(2_500_000_000);
        assert_eq!(s.ticks_to_us(2_500_000_000), 999_999); // truncation of the 32.32 fixed point
        assert_eq!(s.ticks_to_us(2_500), 0);
        let s = TscScale::new(1_000_000_000);
        // one hour of ticks stays within a microsecond per second
        let us = s.ticks_to_us(3_600 * 1_000_000_000);
        assert!(
            (3_600_000_000 - 3_600..=3_600_000_000).contains(&us),
            "{us}"
        );
        // no overflow after ten years at 5 GHz
        let s = TscScale::new(5_000_000_000);
        let ten_years = 10 * 365 * 86_400u64 * 5_000_000_000;
        assert!(s.ticks_to_us(ten_years) > 315_000_000_000_000);
    }

    fn regs(status_b: u8, h: u8) -> RtcRegisters {
        RtcRegisters {
            second: 0x56,
            minute: 0x34,
            hour: h,
            day: 0x25,
            month: 0x11,
            year: 0x26,
            century: 0x20,
            status_b,
        }
    }

    #[test]
    fn decodes_bcd_24h() {
        let t = regs(0x02, 0x12).decode().unwrap();
        assert_eq!(
            t,
            RtcTime {
                year: 2026,
                month: 11,
                day: 25,
                hour: 12,
                minute: 34,
                second: 56
            }
        );
        assert_eq!(t.unix_seconds(), 1_795_610_096);
    }

    #[test]
    fn decodes_12h_pm_and_binary() {
        let t = regs(0x00, 0x80 | 0x01).decode().unwrap();
        assert_eq!(t.hour, 13);
        let t = regs(0x00, 0x80 | 0x12).decode().unwrap();
        assert_eq!(t.hour, 12);
        let t = regs(0x00, 0x12).decode().unwrap();
        assert_eq!(t.hour, 0);
        let b = RtcRegisters {
            second: 5,
            minute: 6,
            hour: 7,
            day: 8,
            month: 9,
            year: 30,
            century: 20,
            status_b: 0x06,
        };
        assert_eq!(b.decode().unwrap().to_string(), "2030-09-08T07:06:05Z");
    }

    #[test]
    fn rejects_absent_rtc() {
        let r = RtcRegisters {
            second: 0xff,
            minute: 0xff,
            hour: 0xff,
            day: 0xff,
            month: 0xff,
            year: 0xff,
            century: 0xff,
            status_b: 0xff,
        };
        assert_eq!(r.decode(), Err(ClockError::RtcInvalid));
    }

    #[test]
    fn unix_epoch_and_leap_day() {
        let t = |year, month, day| RtcTime {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
        };
        assert_eq!(t(1970, 1, 1).unix_seconds(), 0);
        assert_eq!(t(2000, 3, 1).unix_seconds(), 951_868_800);
        assert_eq!(t(2024, 2, 29).unix_seconds(), 1_709_164_800);
    }
}
