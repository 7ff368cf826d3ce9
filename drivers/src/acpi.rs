//! ACPI, just enough for the power button and S5: the RSDP, the RSDT/XSDT, the FADT's PM1 registers and
//! the DSDT's `_S5_` package (its SLP_TYPa).
//!
//! Layer: a pure parser. Physical memory is reached through [`PhysMem`], which the kernel implements over
//! its identity map (and the tests over a byte vector); nothing here touches hardware or panics on bad
//! input. Every table's checksum is verified and every length is bounded ([`MAX_TABLE_LEN`]) before a
//! byte of it is used. The AML of the DSDT is not interpreted: [`find_s5`] looks for the usual
//! `Name (_S5_, Package () { ... })` encoding and decodes its first element.
#![forbid(unsafe_code)]

use core::fmt;

/// Physical memory as the parser sees it.
pub trait PhysMem {
    /// The `len` bytes at physical address `paddr`, or None where that range cannot be read.
    fn read(&self, paddr: u64, len: usize) -> Option<&[u8]>;
}

/// The RSDP's signature.
pub const RSDP_SIGNATURE: &[u8; 8] = b"RSD PTR ";
/// Where the BIOS area the RSDP may live in starts (ACPI 5.2.5.1).
pub const BIOS_AREA: (u64, u64) = (0xe_0000, 0x10_0000);
/// The BDA word holding the EBDA's segment.
pub const EBDA_POINTER: u64 = 0x40e;
/// How much of the EBDA is searched (its first KiB, per the spec).
pub const EBDA_SEARCH_LEN: usize = 1024;
/// Longest table accepted: QEMU's DSDTs are a few KiB; 1 MiB leaves room for any real one.
pub const MAX_TABLE_LEN: u32 = 1 << 20;
/// Most RSDT/XSDT entries looked at.
const MAX_ENTRIES: usize = 64;
/// The size of a system description table's header.
pub const HEADER_LEN: usize = 36;

/// Why the power button cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiError {
    /// No RSDP (the boot hint was empty or bad, and the BIOS area holds none): ACPI off.
    NoRsdp,
    /// The RSDT/XSDT the RSDP names is missing or broken.
    BadRootTable,
    /// No valid FADT in the root table.
    NoFadt,
    /// A hardware-reduced ACPI machine (e.g. microvm): no PM1 registers.
    HardwareReduced,
    /// The FADT names no PM1a event or control block in I/O space.
    NoPm1,
    /// The DSDT is missing or broken.
    BadDsdt,
    /// The DSDT has no `_S5_` package this parser can decode.
    NoS5,
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoRsdp => "no RSDP (ACPI off)",
            Self::BadRootTable => "RSDT/XSDT missing or bad checksum",
            Self::NoFadt => "no FADT",
            Self::HardwareReduced => "hardware-reduced ACPI (no PM1 registers)",
            Self::NoPm1 => "FADT has no PM1a event/control block in I/O space",
            Self::BadDsdt => "DSDT missing or bad checksum",
            Self::NoS5 => "no _S5_ in the DSDT",
        })
    }
}

/// What the power button and S5 need, from the FADT and the DSDT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerInfo {
    /// Where the RSDP was.
    pub rsdp: u64,
    /// PM1a event block (I/O port): status at +0, enable at +`pm1_evt_len`/2.
    pub pm1a_evt: u16,
    /// PM1_EVT_LEN (bytes; status and enable are half each).
    pub pm1_evt_len: u8,
    /// PM1a control block (I/O port).
    pub pm1a_cnt: u16,
    /// SMI command port (0: the machine is always in ACPI mode).
    pub smi_cmd: u16,
    /// The value written to `smi_cmd` to enter ACPI mode.
    pub acpi_enable: u8,
    /// SLP_TYPa for S5 (3 bits).
    pub s5_slp_typ: u8,
}

impl PowerInfo {
    /// The PM1a enable register.
    pub fn pm1a_enable(&self) -> u16 {
        self.pm1a_evt.wrapping_add(u16::from(self.pm1_evt_len / 2))
    }

    /// The PM1a_CNT value that enters S5.
    pub fn s5_value(&self) -> u16 {
        (u16::from(self.s5_slp_typ & 7) << 10) | PM1_CNT_SLP_EN
    }
}

/// PM1 status/enable bit of the power button.
pub const PM1_PWRBTN: u16 = 1 << 8;
/// PM1_CNT: SCI_EN (the machine is in ACPI mode).
pub const PM1_CNT_SCI_EN: u16 = 1;
/// PM1_CNT: SLP_EN (enter the sleep state of SLP_TYP).
pub const PM1_CNT_SLP_EN: u16 = 1 << 13;

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A checked RSDP at the start of `bytes`: the root table's address and whether it is an XSDT.
pub fn parse_rsdp(bytes: &[u8]) -> Option<(u64, bool)> {
    let v1 = bytes.get(..20)?;
    if &v1[..8] != RSDP_SIGNATURE || sum(v1) != 0 {
        return None;
    }
    let revision = v1[15];
    if revision >= 2 {
        let len = usize::try_from(u32_at(bytes, 20)?).ok()?;
        if (36..=1024).contains(&len) {
            if let Some(ext) = bytes.get(..len) {
                let xsdt = u64_at(ext, 24)?;
                if sum(ext) == 0 && xsdt != 0 {
                    return Some((xsdt, true));
                }
            }
        }
    }
    let rsdt = u32_at(v1, 16)?;
    (rsdt != 0).then_some((u64::from(rsdt), false))
}

/// Scans `area` (starting at physical `base`) on 16-byte boundaries for a checked RSDP.
pub fn scan_rsdp(area: &[u8], base: u64) -> Option<(u64, u64, bool)> {
    (0..area.len())
        .step_by(16)
        .find_map(|at| parse_rsdp(&area[at..]).map(|(root, x)| (base + at as u64, root, x)))
}

/// Reads the table at `paddr`: its header's length bounded, its checksum verified, and (when given) its
/// signature checked.
pub fn read_table<'m, M: PhysMem + ?Sized>(
    mem: &'m M,
    paddr: u64,
    signature: Option<&[u8; 4]>,
) -> Option<&'m [u8]> {
    if paddr == 0 {
        return None;
    }
    let header = mem.read(paddr, HEADER_LEN)?;
    if signature.is_some_and(|s| header[..4] != s[..]) {
        return None;
    }
    let len = u32_at(header, 4)?;
    if (len as usize) < HEADER_LEN || len > MAX_TABLE_LEN {
        return None;
    }
    let table = mem.read(paddr, len as usize)?;
    (table.len() == len as usize && sum(table) == 0).then_some(table)
}

/// The entries of a checked RSDT (`xsdt` false, 32-bit) or XSDT (64-bit).
fn root_entries(root: &[u8], xsdt: bool) -> impl Iterator<Item = u64> + '_ {
    let size = if xsdt { 8 } else { 4 };
    root.get(HEADER_LEN..)
        .unwrap_or(&[])
        .chunks_exact(size)
        .take(MAX_ENTRIES)
        .map(move |e| {
            if xsdt {
                u64_at(e, 0).unwrap_or(0)
            } else {
                u64::from(u32_at(e, 0).unwrap_or(0))
            }
        })
}

/// Finds the RSDP: `hint` (the PVH start info's `rsdp_paddr`) when non-zero and valid, else the EBDA's
/// first KiB, else the BIOS area. Returns where it is, the root table's address and whether it is an
/// XSDT.
pub fn find_rsdp<M: PhysMem + ?Sized>(mem: &M, hint: u64) -> Option<(u64, u64, bool)> {
    if hint != 0 {
        if let Some((root, x)) = mem.read(hint, 36).and_then(parse_rsdp).or_else(|| {
            // A revision-0 RSDP may sit in the last 20 bytes of a readable range.
            mem.read(hint, 20).and_then(parse_rsdp)
        }) {
            return Some((hint, root, x));
        }
    }
    let ebda = mem
        .read(EBDA_POINTER, 2)
        .and_then(|b| u16_at(b, 0))
        .map(|seg| u64::from(seg) << 4)
        .filter(|a| (0x8_0000..0xa_0000).contains(a));
    if let Some(base) = ebda {
        if let Some(found) = mem
            .read(base, EBDA_SEARCH_LEN)
            .and_then(|a| scan_rsdp(a, base))
        {
            return Some(found);
        }
    }
    let (start, end) = BIOS_AREA;
    mem.read(start, (end - start) as usize)
        .and_then(|a| scan_rsdp(a, start))
}

/// Reads a Generic Address Structure at `at` if it names system I/O space; its port.
fn gas_io(fadt: &[u8], at: usize) -> Option<u16> {
    let gas = fadt.get(at..at + 12)?;
    if gas[0] != 1 {
        return None;
    }
    u16::try_from(u64_at(gas, 4)?).ok().filter(|&p| p != 0)
}

/// FADT offsets (ACPI 6.x, 5.2.9).
mod fadt {
    pub const DSDT: usize = 40;
    pub const SMI_CMD: usize = 48;
    pub const ACPI_ENABLE: usize = 52;
    pub const PM1A_EVT_BLK: usize = 56;
    pub const PM1A_CNT_BLK: usize = 64;
    pub const PM1_EVT_LEN: usize = 88;
    pub const FLAGS: usize = 112;
    pub const X_DSDT: usize = 140;
    pub const X_PM1A_EVT_BLK: usize = 148;
    pub const X_PM1A_CNT_BLK: usize = 172;
    /// FLAGS: HW_REDUCED_ACPI.
    pub const HW_REDUCED: u32 = 1 << 20;
}

/// The PM1 and SMI fields of a checked FADT, and the DSDT's address. `s5_slp_typ` is left 0.
pub fn parse_fadt(table: &[u8], rsdp: u64) -> Result<(PowerInfo, u64), AcpiError> {
    if table.get(..4) != Some(b"FACP") {
        return Err(AcpiError::NoFadt);
    }
    if u32_at(table, fadt::FLAGS).is_some_and(|f| f & fadt::HW_REDUCED != 0) {
        return Err(AcpiError::HardwareReduced);
    }
    let port = |legacy: usize, extended: usize| {
        u32_at(table, legacy)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0)
            .or_else(|| gas_io(table, extended))
    };
    let pm1a_evt = port(fadt::PM1A_EVT_BLK, fadt::X_PM1A_EVT_BLK);
    let pm1a_cnt = port(fadt::PM1A_CNT_BLK, fadt::X_PM1A_CNT_BLK);
    let pm1_evt_len = table.get(fadt::PM1_EVT_LEN).copied().unwrap_or(0);
    let (Some(pm1a_evt), Some(pm1a_cnt)) = (pm1a_evt, pm1a_cnt) else {
        return Err(AcpiError::NoPm1);
    };
    if pm1_evt_len < 4 {
        return Err(AcpiError::NoPm1);
    }
    let dsdt = u64_at(table, fadt::X_DSDT)
        .filter(|&d| d != 0)
        .or_else(|| u32_at(table, fadt::DSDT).map(u64::from))
        .unwrap_or(0);
    let info = PowerInfo {
        rsdp,
        pm1a_evt,
        pm1_evt_len,
        pm1a_cnt,
        smi_cmd: u32_at(table, fadt::SMI_CMD)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0),
        acpi_enable: table.get(fadt::ACPI_ENABLE).copied().unwrap_or(0),
        s5_slp_typ: 0,
    };
    Ok((info, dsdt))
}

/// AML opcodes the `_S5_` decoding knows.
mod aml {
    pub const NAME_OP: u8 = 0x08;
    pub const PACKAGE_OP: u8 = 0x12;
    pub const ZERO_OP: u8 = 0x00;
    pub const ONE_OP: u8 = 0x01;
    pub const ONES_OP: u8 = 0xff;
    pub const BYTE_PREFIX: u8 = 0x0a;
    pub const WORD_PREFIX: u8 = 0x0b;
    pub const DWORD_PREFIX: u8 = 0x0c;
    pub const ROOT_CHAR: u8 = b'\\';
}

/// Decodes the `_S5_` package after the name at `at` (the index of `_S5_` in `aml`): SLP_TYPa.
fn decode_s5(aml: &[u8], at: usize) -> Option<u8> {
    // Name (_S5_, ...) or Name (\_S5_, ...).
    let named = match at.checked_sub(1).and_then(|i| aml.get(i)) {
        Some(&aml::NAME_OP) => true,
        Some(&aml::ROOT_CHAR) => at.checked_sub(2).and_then(|i| aml.get(i)) == Some(&aml::NAME_OP),
        _ => false,
    };
    if !named {
        return None;
    }
    let mut i = at + 4;
    if *aml.get(i)? != aml::PACKAGE_OP {
        return None;
    }
    i += 1;
    // PkgLength: bits 7-6 of the lead byte count the bytes that follow (0..=3).
    let lead = *aml.get(i)?;
    let follow = usize::from(lead >> 6);
    let pkg_len = if follow == 0 {
        usize::from(lead & 0x3f)
    } else {
        let mut len = usize::from(lead & 0x0f);
        for k in 0..follow {
            len |= usize::from(*aml.get(i + 1 + k)?) << (4 + 8 * k);
        }
        len
    };
    let pkg_end = i.checked_add(pkg_len)?;
    if pkg_end > aml.len() {
        return None;
    }
    i += 1 + follow;
    let elements = *aml.get(i)?;
    i += 1;
    if elements == 0 || i >= pkg_end {
        return None;
    }
    let value: u64 = match *aml.get(i)? {
        aml::ZERO_OP => 0,
        aml::ONE_OP => 1,
        aml::ONES_OP => u64::MAX,
        aml::BYTE_PREFIX => u64::from(*aml.get(i + 1)?),
        aml::WORD_PREFIX => u64::from(u16_at(aml, i + 1)?),
        aml::DWORD_PREFIX => u64::from(u32_at(aml, i + 1)?),
        _ => return None,
    };
    Some((value & 7) as u8)
}

/// SLP_TYPa of the `_S5_` package in a checked DSDT (or any AML byte string): the first occurrence of
/// the name that decodes as `Name (_S5_, Package () { slp_typ_a, ... })`.
pub fn find_s5(table: &[u8]) -> Option<u8> {
    let aml = table.get(HEADER_LEN..)?;
    aml.windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"_S5_")
        .find_map(|(at, _)| decode_s5(aml, at))
}

/// Everything from the RSDP (found through `hint`, the EBDA or the BIOS area) to SLP_TYPa.
pub fn find_power_info<M: PhysMem + ?Sized>(mem: &M, hint: u64) -> Result<PowerInfo, AcpiError> {
    let (rsdp, root_addr, xsdt) = find_rsdp(mem, hint).ok_or(AcpiError::NoRsdp)?;
    let root = read_table(mem, root_addr, Some(if xsdt { b"XSDT" } else { b"RSDT" }))
        .ok_or(AcpiError::BadRootTable)?;
    let fadt = root_entries(root, xsdt)
        .find_map(|addr| read_table(mem, addr, Some(b"FACP")))
        .ok_or(AcpiError::NoFadt)?;
    let (mut info, dsdt) = parse_fadt(fadt, rsdp)?;
    let dsdt = read_table(mem, dsdt, Some(b"DSDT")).ok_or(AcpiError::BadDsdt)?;
    info.s5_slp_typ = find_s5(dsdt).ok_or(AcpiError::NoS5)?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Physical memory made of a few regions.
    #[derive(Default)]
    struct Mem(Vec<(u64, Vec<u8>)>);

    impl Mem {
        fn put(&mut self, at: u64, bytes: Vec<u8>) {
            self.0.push((at, bytes));
        }
    }

    impl PhysMem for Mem {
        fn read(&self, paddr: u64, len: usize) -> Option<&[u8]> {
            self.0.iter().find_map(|(base, bytes)| {
                let off = usize::try_from(paddr.checked_sub(*base)?).ok()?;
                bytes.get(off..off.checked_add(len)?)
            })
        }
    }

    fn fix(bytes: &mut [u8], at: usize) {
        bytes[at] = 0;
        bytes[at] = 0u8.wrapping_sub(sum(bytes));
    }

    fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; HEADER_LEN];
        t[..4].copy_from_slice(sig);
        t[4..8].copy_from_slice(&((HEADER_LEN + body.len()) as u32).to_le_bytes());
        t[8] = 2;
        t[10..16].copy_from_slice(b"OXVPN ");
        t.extend_from_slice(body);
        fix(&mut t, 9);
        t
    }

    fn rsdp_v0(rsdt: u32) -> Vec<u8> {
        let mut r = vec![0u8; 20];
        r[..8].copy_from_slice(RSDP_SIGNATURE);
        r[9..15].copy_from_slice(b"BOCHS ");
        r[16..20].copy_from_slice(&rsdt.to_le_bytes());
        fix(&mut r, 8);
        r
    }

    fn rsdp_v2(rsdt: u32, xsdt: u64) -> Vec<u8> {
        let mut r = vec![0u8; 36];
        r[..8].copy_from_slice(RSDP_SIGNATURE);
        r[15] = 2;
        r[16..20].copy_from_slice(&rsdt.to_le_bytes());
        r[20..24].copy_from_slice(&36u32.to_le_bytes());
        r[24..32].copy_from_slice(&xsdt.to_le_bytes());
        fix(&mut r[..20], 8);
        fix(&mut r, 32);
        r
    }

    /// A FADT body (after the header) as QEMU's pc machine writes it (revision 1, 116 bytes) or longer.
    fn fadt_body(dsdt: u32, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len - HEADER_LEN];
        let mut put =
            |at: usize, v: &[u8]| b[at - HEADER_LEN..at - HEADER_LEN + v.len()].copy_from_slice(v);
        put(fadt::DSDT, &dsdt.to_le_bytes());
        put(46, &9u16.to_le_bytes());
        put(fadt::SMI_CMD, &0xb2u32.to_le_bytes());
        put(fadt::ACPI_ENABLE, &[0xf1, 0xf0]);
        put(fadt::PM1A_EVT_BLK, &0x600u32.to_le_bytes());
        put(fadt::PM1A_CNT_BLK, &0x604u32.to_le_bytes());
        put(fadt::PM1_EVT_LEN, &[4, 2]);
        b
    }

    /// `Name (_S5_, Package (4) { Zero, Zero, Zero, Zero })`, QEMU's.
    const S5_ZERO: &[u8] = &[0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0, 0, 0, 0];
    /// `Name (\_S5_, Package (2) { 0x07, 0x07 })` after a decoy `_S5_` in a method.
    const S5_BYTE: &[u8] = &[
        0x14, 0x08, b'F', b'O', b'O', b'_', 0x00, 0xa4, b'_', b'S', b'5',
        b'_', // Method FOO_: Return(_S5_)
        0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x0a, 0x07, 0x0a, 0x07,
    ];

    const RSDP_AT: u64 = 0xf_5a10;
    const RSDT_AT: u64 = 0x7fe_0000;
    const XSDT_AT: u64 = 0x7fe_0100;
    const FADT_AT: u64 = 0x7fe_1000;
    const DSDT_AT: u64 = 0x7fe_2000;

    /// A machine with a v0 RSDP in the BIOS area, an RSDT (an unrelated table first), a FADT and a DSDT.
    fn machine(fadt: Vec<u8>, dsdt: Vec<u8>) -> Mem {
        let mut bios = vec![0u8; (BIOS_AREA.1 - BIOS_AREA.0) as usize];
        let at = (RSDP_AT - BIOS_AREA.0) as usize;
        bios[at..at + 20].copy_from_slice(&rsdp_v0(RSDT_AT as u32));
        // A signature without a valid checksum earlier on, on a 16-byte boundary: skipped.
        bios[0x100..0x108].copy_from_slice(RSDP_SIGNATURE);
        let mut entries = Vec::new();
        entries.extend_from_slice(&(0x7fe_3000u32).to_le_bytes());
        entries.extend_from_slice(&(FADT_AT as u32).to_le_bytes());
        let mut mem = Mem::default();
        mem.put(BIOS_AREA.0, bios);
        mem.put(RSDT_AT, table(b"RSDT", &entries));
        mem.put(0x7fe_3000, table(b"APIC", &[0; 8]));
        mem.put(FADT_AT, fadt);
        mem.put(DSDT_AT, dsdt);
        mem
    }

    fn qemu_pc() -> Mem {
        machine(
            table(b"FACP", &fadt_body(DSDT_AT as u32, 116)),
            table(b"DSDT", S5_ZERO),
        )
    }

    #[test]
    fn qemu_pc_through_the_bios_area_scan() {
        let info = find_power_info(&qemu_pc(), 0).unwrap();
        assert_eq!(
            info,
            PowerInfo {
                rsdp: RSDP_AT,
                pm1a_evt: 0x600,
                pm1_evt_len: 4,
                pm1a_cnt: 0x604,
                smi_cmd: 0xb2,
                acpi_enable: 0xf1,
                s5_slp_typ: 0,
            }
        );
        assert_eq!(info.pm1a_enable(), 0x602);
        assert_eq!(info.s5_value(), 1 << 13);
    }

    #[test]
    fn the_hint_wins_and_a_bad_hint_falls_back_to_the_scan() {
        let mut mem = qemu_pc();
        mem.put(0x9_fc00, rsdp_v0(RSDT_AT as u32));
        assert_eq!(find_power_info(&mem, 0x9_fc00).unwrap().rsdp, 0x9_fc00);
        // A hint at garbage (or at nothing readable) is ignored.
        assert_eq!(find_power_info(&mem, 0x7fe_3000).unwrap().rsdp, RSDP_AT);
        assert_eq!(find_power_info(&mem, 0x1234_5678).unwrap().rsdp, RSDP_AT);
    }

    #[test]
    fn ebda_is_searched_before_the_bios_area() {
        let mut mem = qemu_pc();
        let mut bda = vec![0u8; 0x10];
        bda[0xe..0x10].copy_from_slice(&0x9fc0u16.to_le_bytes());
        mem.put(0x400, bda);
        let mut ebda = vec![0u8; 1024];
        ebda[0x20..0x34].copy_from_slice(&rsdp_v0(RSDT_AT as u32));
        mem.put(0x9_fc00, ebda);
        assert_eq!(find_power_info(&mem, 0).unwrap().rsdp, 0x9_fc20);
    }

    #[test]
    fn xsdt_preferred_over_rsdt() {
        let mut mem = qemu_pc();
        // The RSDT names no FADT; the XSDT (64-bit entries) does, with a revision-5 FADT and X_DSDT.
        mem.0.retain(|(at, _)| *at != RSDT_AT);
        mem.put(RSDT_AT, table(b"RSDT", &0x7fe_3000u32.to_le_bytes()));
        mem.put(XSDT_AT, table(b"XSDT", &(0x7fe_4000u64).to_le_bytes()));
        let mut body = fadt_body(0, 244);
        body[fadt::X_DSDT - HEADER_LEN..fadt::X_DSDT - HEADER_LEN + 8]
            .copy_from_slice(&0x7fe_5000u64.to_le_bytes());
        mem.put(0x7fe_4000, table(b"FACP", &body));
        mem.put(0x7fe_5000, table(b"DSDT", S5_BYTE));
        mem.put(0x9_fc00, rsdp_v2(RSDT_AT as u32, XSDT_AT));
        let info = find_power_info(&mem, 0x9_fc00).unwrap();
        assert_eq!(info.s5_slp_typ, 7);
        assert_eq!(info.s5_value(), (7 << 10) | (1 << 13));
        // The same RSDP with a broken extended checksum: the RSDT, which has no FADT.
        let mut bad = rsdp_v2(RSDT_AT as u32, XSDT_AT);
        bad[33] ^= 1;
        mem.put(0x9_f000, bad);
        assert_eq!(find_power_info(&mem, 0x9_f000), Err(AcpiError::NoFadt));
    }

    #[test]
    fn extended_pm1_blocks_when_the_legacy_ones_are_zero() {
        let mut body = fadt_body(DSDT_AT as u32, 244);
        for at in [fadt::PM1A_EVT_BLK, fadt::PM1A_CNT_BLK] {
            body[at - HEADER_LEN..at - HEADER_LEN + 4].fill(0);
        }
        let gas = |port: u64| {
            let mut g = vec![1u8, 32, 0, 2];
            g.extend_from_slice(&port.to_le_bytes());
            g
        };
        body[fadt::X_PM1A_EVT_BLK - HEADER_LEN..][..12].copy_from_slice(&gas(0xb000));
        body[fadt::X_PM1A_CNT_BLK - HEADER_LEN..][..12].copy_from_slice(&gas(0xb004));
        let info =
            find_power_info(&machine(table(b"FACP", &body), table(b"DSDT", S5_ZERO)), 0).unwrap();
        assert_eq!((info.pm1a_evt, info.pm1a_cnt), (0xb000, 0xb004));
    }

    #[test]
    fn bad_checksums_are_refused() {
        // RSDP: the scan finds none.
        let mut mem = qemu_pc();
        let bios = &mut mem.0[0].1;
        bios[(RSDP_AT - BIOS_AREA.0) as usize + 8] ^= 0x55;
        assert_eq!(find_power_info(&mem, 0), Err(AcpiError::NoRsdp));
        // FADT, DSDT.
        let mut fadt = table(b"FACP", &fadt_body(DSDT_AT as u32, 116));
        fadt[60] ^= 1;
        assert_eq!(
            find_power_info(&machine(fadt, table(b"DSDT", S5_ZERO)), 0),
            Err(AcpiError::NoFadt)
        );
        let mut dsdt = table(b"DSDT", S5_ZERO);
        dsdt[HEADER_LEN + 9] = 1;
        let fadt = table(b"FACP", &fadt_body(DSDT_AT as u32, 116));
        assert_eq!(
            find_power_info(&machine(fadt, dsdt), 0),
            Err(AcpiError::BadDsdt)
        );
    }

    #[test]
    fn truncated_and_oversized_tables_are_refused() {
        let fadt = table(b"FACP", &fadt_body(DSDT_AT as u32, 116));
        // Memory ends before the DSDT's header says it does.
        let mut dsdt = table(b"DSDT", S5_ZERO);
        dsdt.truncate(dsdt.len() - 1);
        assert_eq!(
            find_power_info(&machine(fadt.clone(), dsdt), 0),
            Err(AcpiError::BadDsdt)
        );
        // A header length below the header itself, or absurdly large.
        for len in [10u32, MAX_TABLE_LEN + 1] {
            let mut dsdt = table(b"DSDT", S5_ZERO);
            dsdt[4..8].copy_from_slice(&len.to_le_bytes());
            assert_eq!(
                find_power_info(&machine(fadt.clone(), dsdt), 0),
                Err(AcpiError::BadDsdt)
            );
        }
        // A FADT too short to hold the PM1 blocks.
        let short = table(b"FACP", &[0u8; 20]);
        assert_eq!(
            find_power_info(&machine(short, table(b"DSDT", S5_ZERO)), 0),
            Err(AcpiError::NoPm1)
        );
        // An RSDT with a dangling partial entry: the whole entries are still used.
        let mut mem = qemu_pc();
        mem.0.retain(|(at, _)| *at != RSDT_AT);
        mem.put(RSDT_AT, table(b"RSDT", &[0x00, 0x10, 0xfe, 0x07, 0xaa]));
        assert!(find_power_info(&mem, 0).is_ok());
    }

    #[test]
    fn dsdt_without_s5() {
        let fadt = table(b"FACP", &fadt_body(DSDT_AT as u32, 116));
        let no_s5 = table(b"DSDT", &[0x10, 0x05, b'_', b'S', b'B', b'_']);
        assert_eq!(
            find_power_info(&machine(fadt.clone(), no_s5), 0),
            Err(AcpiError::NoS5)
        );
        // `_S5_` only as a reference, and packages cut short, are no `_S5_` package.
        for aml in [
            &S5_BYTE[..12],
            &S5_ZERO[..7],
            &S5_ZERO[..8],
            &[0x08, b'_', b'S', b'5', b'_', 0x12, 0x3f, 0x04, 0][..],
            &[0x08, b'_', b'S', b'5', b'_', 0x12, 0x02, 0x00][..],
            &[
                0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x0d, 0, 0, 0,
            ][..],
        ] {
            assert_eq!(find_s5(&table(b"DSDT", aml)), None, "{aml:x?}");
        }
    }

    #[test]
    fn s5_encodings() {
        let s5 = |first: &[u8]| {
            let mut aml = vec![0x08, b'_', b'S', b'5', b'_', 0x12];
            let len = 2 + first.len();
            aml.push(len as u8);
            aml.push(1);
            aml.extend_from_slice(first);
            find_s5(&table(b"DSDT", &aml))
        };
        assert_eq!(s5(&[0x00]), Some(0));
        assert_eq!(s5(&[0x01]), Some(1));
        assert_eq!(s5(&[0x0a, 0x05]), Some(5));
        assert_eq!(s5(&[0x0b, 0x06, 0x00]), Some(6));
        assert_eq!(s5(&[0x0c, 0x03, 0, 0, 0]), Some(3));
        // A two-byte PkgLength.
        let mut aml = vec![
            0x08, b'_', b'S', b'5', b'_', 0x12, 0x44, 0x00, 0x02, 0x0a, 0x07, 0x0a, 0x07,
        ];
        aml.resize(6 + 0x44, 0);
        assert_eq!(find_s5(&table(b"DSDT", &aml)), Some(7));
    }

    #[test]
    fn hardware_reduced_and_missing_tables() {
        let mut body = fadt_body(DSDT_AT as u32, 244);
        body[fadt::FLAGS - HEADER_LEN + 2] = 0x10;
        assert_eq!(
            find_power_info(&machine(table(b"FACP", &body), table(b"DSDT", S5_ZERO)), 0),
            Err(AcpiError::HardwareReduced)
        );
        assert_eq!(find_power_info(&Mem::default(), 0), Err(AcpiError::NoRsdp));
        let mut mem = qemu_pc();
        mem.0.retain(|(at, _)| *at != RSDT_AT);
        assert_eq!(find_power_info(&mem, 0), Err(AcpiError::BadRootTable));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut bytes = vec![0u8; 64];
            for b in bytes.iter_mut() {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                *b = (seed >> 16) as u8;
            }
            bytes[..4].copy_from_slice(b"_S5_");
            let _ = find_s5(&bytes);
            let _ = parse_rsdp(&bytes);
            let _ = parse_fadt(&bytes, 0);
            for cut in 0..bytes.len() {
                let _ = decode_s5(&bytes[..cut], 0);
            }
        }
    }
}
