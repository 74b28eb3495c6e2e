//! The loaded modules (executable and shared objects), listed once at
//! start-up so that the signal handler can map a pc to `module+0xoffset`,
//! print each module's build-id and load address, and find its unwind
//! tables — without `dl_iterate_phdr` (which takes a lock) in the handler.
//!
//! Modules loaded later (`dlopen`) are not listed; their frames print as
//! bare addresses.

use std::ffi::CStr;
use std::sync::OnceLock;

/// A loaded ELF module.
#[derive(Debug)]
pub struct Module {
    /// Path as the dynamic loader knows it (the executable's is resolved
    /// through `/proc/self/exe`).
    pub path: String,
    /// Load bias: runtime address = file virtual address + `base`.
    pub base: usize,
    /// `[start, end)` of the module's executable `PT_LOAD` segments.
    pub text: Vec<(usize, usize)>,
    /// Lowest and highest address of all its `PT_LOAD` segments.
    pub start: usize,
    /// See `start`.
    pub end: usize,
    /// `PT_GNU_EH_FRAME` (`.eh_frame_hdr`) in memory: address and length.
    pub eh_frame_hdr: Option<(usize, usize)>,
    /// GNU build-id bytes (from the `PT_NOTE` segment), if present.
    pub build_id: Vec<u8>,
}

impl Module {
    /// Whether `pc` falls in one of the module's segments.
    pub fn contains(&self, pc: usize) -> bool {
        pc >= self.start && pc < self.end
    }

    /// Build-id as lowercase hex into `out`; returns the used part.
    pub fn build_id_hex<'a>(&self, out: &'a mut [u8; 80]) -> &'a [u8] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = self.build_id.len().min(40);
        for (i, b) in self.build_id[..n].iter().enumerate() {
            out[2 * i] = HEX[(b >> 4) as usize];
            out[2 * i + 1] = HEX[(b & 15) as usize];
        }
        &out[..2 * n]
    }
}

#[cfg(target_pointer_width = "64")]
type Phdr = libc::Elf64_Phdr;
#[cfg(target_pointer_width = "32")]
type Phdr = libc::Elf32_Phdr;

static MODULES: OnceLock<Vec<Module>> = OnceLock::new();

/// Lists the modules (once). Allocates: call at start-up, never from a
/// signal handler.
pub fn init() -> &'static [Module] {
    MODULES.get_or_init(scan)
}

/// The modules listed by [`init`] (empty before). Lock-free after init.
pub fn modules() -> &'static [Module] {
    MODULES.get().map_or(&[], Vec::as_slice)
}

/// The module containing `pc` and `pc`'s offset in it (file virtual
/// address). Allocation-free.
pub fn module_of(pc: usize) -> Option<(&'static Module, usize)> {
    modules()
        .iter()
        .find(|m| m.contains(pc))
        .map(|m| (m, pc.wrapping_sub(m.base)))
}

fn scan() -> Vec<Module> {
    let mut out: Vec<Module> = Vec::new();
    // SAFETY: the callback only reads the phdr data the loader passes for
    // the duration of the call, and `out` outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut out as *mut Vec<Module>).cast()) };
    out
}

unsafe extern "C" fn visit(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: dl_iterate_phdr passes a valid info and our `data`.
    let (info, out) = unsafe { (&*info, &mut *data.cast::<Vec<Module>>()) };
    let base = info.dlpi_addr as usize;
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: dlpi_name is a NUL-terminated string owned by the loader.
        unsafe { CStr::from_ptr(info.dlpi_name) }
            .to_string_lossy()
            .into_owned()
    };
    let path = if name.is_empty() && out.is_empty() {
        std::fs::read_link("/proc/self/exe")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        name
    };
    let phdrs: &[Phdr] = if info.dlpi_phdr.is_null() {
        &[]
    } else {
        // SAFETY: the loader gives dlpi_phnum program headers at dlpi_phdr.
        unsafe { core::slice::from_raw_parts(info.dlpi_phdr.cast(), info.dlpi_phnum as usize) }
    };
    let mut m = Module {
        path,
        base,
        text: Vec::new(),
        start: usize::MAX,
        end: 0,
        eh_frame_hdr: None,
        build_id: Vec::new(),
    };
    for ph in phdrs {
        let addr = base.wrapping_add(ph.p_vaddr as usize);
        let len = ph.p_memsz as usize;
        match ph.p_type {
            libc::PT_LOAD => {
                m.start = m.start.min(addr);
                m.end = m.end.max(addr + len);
                if ph.p_flags & libc::PF_X != 0 {
                    m.text.push((addr, addr + len));
                }
            }
            libc::PT_GNU_EH_FRAME => m.eh_frame_hdr = Some((addr, len)),
            libc::PT_NOTE if m.build_id.is_empty() => {
                // SAFETY: the PT_NOTE segment is mapped (it lies inside a
                // PT_LOAD segment) for len bytes at addr.
                let note = unsafe { core::slice::from_raw_parts(addr as *const u8, len) };
                m.build_id = parse_build_id(note).map(<[u8]>::to_vec).unwrap_or_default();
            }
            _ => {}
        }
    }
    if m.start < m.end && !m.path.contains("linux-vdso") {
        out.push(m);
    }
    0
}

/// Finds the `NT_GNU_BUILD_ID` note in a note segment.
fn parse_build_id(mut notes: &[u8]) -> Option<&[u8]> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let align4 = |n: usize| (n + 3) & !3;
    while notes.len() >= 12 {
        let word =
            |i: usize| u32::from_ne_bytes([notes[i], notes[i + 1], notes[i + 2], notes[i + 3]]);
        let (namesz, descsz, kind) = (word(0) as usize, word(4) as usize, word(8));
        let name_end = 12 + align4(namesz);
        let desc_end = name_end + align4(descsz);
        if desc_end > notes.len() {
            return None;
        }
        if kind == NT_GNU_BUILD_ID && namesz == 4 && &notes[12..16] == b"GNU\0" {
            return Some(&notes[name_end..name_end + descsz]);
        }
        notes = &notes[desc_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executable_is_listed_first_with_its_code() {
        let mods = init();
        assert!(!mods.is_empty());
        let here = the_executable_is_listed_first_with_its_code as *const () as usize;
        let (m, off) = module_of(here).expect("our own code is in a module");
        assert!(m.text.iter().any(|&(s, e)| here >= s && here < e));
        assert!(off < here || m.base == 0);
        assert!(mods.iter().any(|m| m.path.contains("libc")), "{mods:?}");
    }
}
