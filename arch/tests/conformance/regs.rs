//! Callee-saved registers and floating-point control state survive a switch.
//!
//! `regs_probe(save, to, pattern)` is a per-arch assembly routine that loads
//! values derived from `pattern` into every callee-saved register (integer
//! and FP, plus FP control state where the ABI makes it callee-saved), calls
//! `context::switch(save, to, pattern)`, and once resumed returns a non-zero
//! value if any register lost its value. Two contexts probing in turn with
//! different patterns prove that neither sees the other's registers.

use super::Pair;

#[cfg(target_arch = "x86_64")]
mod imp {
    use arch::context;
    use std::arch::naked_asm;

    /// rdi = save, rsi = to, rdx = pattern. Loads rbx = p, rbp = p+1,
    /// r12..r15 = p+2..p+5, MXCSR rounding = p & 3, x87 rounding = p & 3;
    /// switches; returns in rax the OR of (actual ^ expected) over all.
    #[unsafe(naked)]
    pub unsafe extern "C" fn regs_probe(save: *mut usize, to: usize, pattern: usize) -> usize {
        naked_asm!(
            "push rbp", "push rbx", "push r12", "push r13", "push r14", "push r15",
            // [rsp] caller MXCSR, [rsp+4] caller x87 cw, [rsp+8] pattern,
            // [rsp+16] scratch; rsp is now 16-aligned for the call.
            "sub rsp, 24",
            "stmxcsr dword ptr [rsp]",
            "fnstcw word ptr [rsp + 4]",
            "mov [rsp + 8], rdx",
            // MXCSR = 0x1f80 | (p & 3) << 13
            "mov ecx, edx", "and ecx, 3", "shl ecx, 13", "or ecx, 0x1f80",
            "mov [rsp + 16], ecx", "ldmxcsr dword ptr [rsp + 16]",
            // x87 cw = 0x037f | (p & 3) << 10
            "mov ecx, edx", "and ecx, 3", "shl ecx, 10", "or ecx, 0x037f",
            "mov [rsp + 16], cx", "fldcw word ptr [rsp + 16]",
            "mov rbx, rdx",
            "lea rbp, [rdx + 1]",
            "lea r12, [rdx + 2]",
            "lea r13, [rdx + 3]",
            "lea r14, [rdx + 4]",
            "lea r15, [rdx + 5]",
            "call {switch}",
            "mov rdx, [rsp + 8]",
            "mov rax, rbx", "xor rax, rdx",
            "lea rcx, [rdx + 1]", "xor rcx, rbp", "or rax, rcx",
            "lea rcx, [rdx + 2]", "xor rcx, r12", "or rax, rcx",
            "lea rcx, [rdx + 3]", "xor rcx, r13", "or rax, rcx",
            "lea rcx, [rdx + 4]", "xor rcx, r14", "or rax, rcx",
            "lea rcx, [rdx + 5]", "xor rcx, r15", "or rax, rcx",
            "stmxcsr dword ptr [rsp + 16]",
            "mov ecx, edx", "and ecx, 3", "shl ecx, 13", "or ecx, 0x1f80",
            "xor ecx, [rsp + 16]", "or rax, rcx",
            "mov word ptr [rsp + 16], 0", "fnstcw word ptr [rsp + 16]",
            "mov ecx, edx", "and ecx, 3", "shl ecx, 10", "or ecx, 0x037f",
            "movzx r8d, word ptr [rsp + 16]", "xor ecx, r8d", "or rax, rcx",
            "ldmxcsr dword ptr [rsp]",
            "fldcw word ptr [rsp + 4]",
            "add rsp, 24",
            "pop r15", "pop r14", "pop r13", "pop r12", "pop rbx", "pop rbp",
            "ret",
            switch = sym context::switch,
        )
    }
}

#[cfg(target_arch = "aarch64")]
mod imp {
    use arch::context;
    use std::arch::naked_asm;

    /// x0 = save, x1 = to, x2 = pattern. Loads x19..x28 = p..p+9, x29 =
    /// p+10, d8..d15 = p+11..p+18 (as bit patterns), FPCR rounding mode
    /// (bits 23:22) = p & 3; switches; returns in x0 the OR of
    /// (actual ^ expected) over all. x30 cannot be probed: `bl` sets it.
    #[unsafe(naked)]
    pub unsafe extern "C" fn regs_probe(save: *mut usize, to: usize, pattern: usize) -> usize {
        naked_asm!(
            // The caller's callee-saved registers, its FPCR and the pattern:
            // [sp] x29/x30, [sp+16..96] x19..x28, [sp+96..160] d8..d15,
            // [sp+160] caller FPCR, [sp+168] pattern. 192 keeps sp 16-aligned.
            "sub sp, sp, #192",
            "stp x29, x30, [sp, #0]",
            "stp x19, x20, [sp, #16]", "stp x21, x22, [sp, #32]",
            "stp x23, x24, [sp, #48]", "stp x25, x26, [sp, #64]",
            "stp x27, x28, [sp, #80]",
            "stp d8, d9, [sp, #96]", "stp d10, d11, [sp, #112]",
            "stp d12, d13, [sp, #128]", "stp d14, d15, [sp, #144]",
            "mrs x9, fpcr",
            "stp x9, x2, [sp, #160]",
            // FPCR = caller's with RMode = p & 3
            "bfi x9, x2, #22, #2", "msr fpcr, x9",
            "mov x19, x2",
            "add x20, x2, #1", "add x21, x2, #2", "add x22, x2, #3",
            "add x23, x2, #4", "add x24, x2, #5", "add x25, x2, #6",
            "add x26, x2, #7", "add x27, x2, #8", "add x28, x2, #9",
            "add x29, x2, #10",
            "add x9, x2, #11", "fmov d8, x9",
            "add x9, x2, #12", "fmov d9, x9",
            "add x9, x2, #13", "fmov d10, x9",
            "add x9, x2, #14", "fmov d11, x9",
            "add x9, x2, #15", "fmov d12, x9",
            "add x9, x2, #16", "fmov d13, x9",
            "add x9, x2, #17", "fmov d14, x9",
            "add x9, x2, #18", "fmov d15, x9",
            "bl {switch}",
            "ldr x2, [sp, #168]",
            "eor x0, x19, x2",
            "add x9, x2, #1", "eor x9, x9, x20", "orr x0, x0, x9",
            "add x9, x2, #2", "eor x9, x9, x21", "orr x0, x0, x9",
            "add x9, x2, #3", "eor x9, x9, x22", "orr x0, x0, x9",
            "add x9, x2, #4", "eor x9, x9, x23", "orr x0, x0, x9",
            "add x9, x2, #5", "eor x9, x9, x24", "orr x0, x0, x9",
            "add x9, x2, #6", "eor x9, x9, x25", "orr x0, x0, x9",
            "add x9, x2, #7", "eor x9, x9, x26", "orr x0, x0, x9",
            "add x9, x2, #8", "eor x9, x9, x27", "orr x0, x0, x9",
            "add x9, x2, #9", "eor x9, x9, x28", "orr x0, x0, x9",
            "add x9, x2, #10", "eor x9, x9, x29", "orr x0, x0, x9",
            "fmov x10, d8", "add x9, x2, #11", "eor x9, x9, x10", "orr x0, x0, x9",
            "fmov x10, d9", "add x9, x2, #12", "eor x9, x9, x10", "orr x0, x0, x9",
            "fmov x10, d10", "add x9, x2, #13", "eor x9, x9, x10", "orr x0, x0, x9",
            "fmov x10, d11", "add x9, x2, #14", "eor x9, x9, x10", "orr x0, x0, x9",
            "fmov x10, d12", "add x9, x2, #15", "eor x9, x9, x10", "orr x0, x0, x9",
            "fmov x10, d13", "add x9, x2, #16", "eor x9, x9, x10", "orr x0, x0, x9",
            "fmov x10, d14", "add x9, x2, #17", "eor x9, x9, x10", "orr x0, x0, x9",
            "fmov x10, d15", "add x9, x2, #18", "eor x9, x9, x10", "orr x0, x0, x9",
            "mrs x10, fpcr",
            "ldr x9, [sp, #160]", "bfi x9, x2, #22, #2",
            "eor x9, x9, x10", "orr x0, x0, x9",
            // Give the caller back its registers and FPCR.
            "ldr x9, [sp, #160]", "msr fpcr, x9",
            "ldp d14, d15, [sp, #144]", "ldp d12, d13, [sp, #128]",
            "ldp d10, d11, [sp, #112]", "ldp d8, d9, [sp, #96]",
            "ldp x27, x28, [sp, #80]", "ldp x25, x26, [sp, #64]",
            "ldp x23, x24, [sp, #48]", "ldp x21, x22, [sp, #32]",
            "ldp x19, x20, [sp, #16]",
            "ldp x29, x30, [sp, #0]",
            "add sp, sp, #192",
            "ret",
            switch = sym context::switch,
        )
    }
}

#[cfg(target_arch = "x86")]
mod imp {
    use arch::context;
    use std::arch::naked_asm;

    /// cdecl: [esp+4] = save, [esp+8] = to, [esp+12] = pattern. Loads
    /// ebx = p, esi = p+1, edi = p+2, ebp = p+3, MXCSR rounding = p & 3,
    /// x87 rounding = p & 3; switches; returns in eax the OR of
    /// (actual ^ expected) over all.
    #[unsafe(naked)]
    pub unsafe extern "C" fn regs_probe(save: *mut usize, to: usize, pattern: usize) -> usize {
        naked_asm!(
            "push ebp", "push ebx", "push esi", "push edi",
            // [esp..12] outgoing save, to, pattern; [esp+12] caller MXCSR,
            // [esp+16] caller x87 cw, [esp+20] pattern, [esp+24] scratch.
            // 16 + 28 bytes below the return address: esp is 16-aligned at
            // the call. Our own arguments are now at esp+48, +52, +56.
            "sub esp, 28",
            "mov edx, [esp + 56]",
            "mov [esp + 20], edx",
            "stmxcsr dword ptr [esp + 12]",
            "fnstcw word ptr [esp + 16]",
            // MXCSR = 0x1f80 | (p & 3) << 13
            "mov ecx, edx", "and ecx, 3", "shl ecx, 13", "or ecx, 0x1f80",
            "mov [esp + 24], ecx", "ldmxcsr dword ptr [esp + 24]",
            // x87 cw = 0x037f | (p & 3) << 10
            "mov ecx, edx", "and ecx, 3", "shl ecx, 10", "or ecx, 0x037f",
            "mov [esp + 24], cx", "fldcw word ptr [esp + 24]",
            "mov eax, [esp + 48]", "mov [esp], eax",
            "mov eax, [esp + 52]", "mov [esp + 4], eax",
            "mov [esp + 8], edx",
            "mov ebx, edx",
            "lea esi, [edx + 1]",
            "lea edi, [edx + 2]",
            "lea ebp, [edx + 3]",
            "call {switch}",
            "mov edx, [esp + 20]",
            "mov eax, ebx", "xor eax, edx",
            "lea ecx, [edx + 1]", "xor ecx, esi", "or eax, ecx",
            "lea ecx, [edx + 2]", "xor ecx, edi", "or eax, ecx",
            "lea ecx, [edx + 3]", "xor ecx, ebp", "or eax, ecx",
            "stmxcsr dword ptr [esp + 24]",
            "mov ecx, edx", "and ecx, 3", "shl ecx, 13", "or ecx, 0x1f80",
            "xor ecx, [esp + 24]", "or eax, ecx",
            "mov dword ptr [esp + 24], 0", "fnstcw word ptr [esp + 24]",
            "mov ecx, edx", "and ecx, 3", "shl ecx, 10", "or ecx, 0x037f",
            "xor ecx, [esp + 24]", "or eax, ecx",
            "ldmxcsr dword ptr [esp + 12]",
            "fldcw word ptr [esp + 16]",
            "add esp, 28",
            "pop edi", "pop esi", "pop ebx", "pop ebp",
            "ret",
            switch = sym context::switch,
        )
    }
}

#[test]
fn callee_saved_and_fp_control_survive_switches() {
    let mut stack = super::TestStack::new(64 * 1024);
    let mut pair = super::start(&mut stack, |p: &mut Pair| {
        let mut bad = 0;
        for i in 0..1000usize {
            let pattern = 0x5a5a_0000 + (i << 4) + 2;
            // SAFETY: main_sp was stored by the switch that resumed us.
            bad |= unsafe { imp::regs_probe(&mut p.ctx_sp, p.main_sp, pattern) };
        }
        p.switch_to_main(bad);
    });
    // The first probe enters the context, whose entry expects 0xfeed.
    for i in 0..1000usize {
        let pattern = if i == 0 {
            0xfeed
        } else {
            0x3c3c_0000 + (i << 4) + 1
        };
        // SAFETY: ctx_sp is either fresh or parked in regs_probe.
        let bad = unsafe { imp::regs_probe(&mut pair.main_sp, pair.ctx_sp, pattern) };
        assert_eq!(bad, 0, "test thread registers clobbered across a switch");
    }
    // The context's report comes with its final switch back.
    let bad = pair.switch_to_ctx(0);
    assert_eq!(bad, 0, "context registers clobbered across a switch");
}
