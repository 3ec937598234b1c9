/* PVH entry: Xen starts us in 32-bit protected mode, paging off, flat segments, %ebx = physical
 * address of struct hvm_start_info (xen/arch-x86/hvm/start_info.h, "PVH boot ABI"). We map the
 * image alone, already W^X (text R+X, rodata and symbols R, data RW+NX, the stack guard pages
 * absent; nothing below the image), enter long mode and call keel_boot(start_info_paddr) on the
 * boot stack. keel_boot maps start_info into these tables page by page as it reads it, then
 * loads the real tables (address_space.h). */

#include "elfnote.h"

#define CR0_PE  (1 << 0)
#define CR0_WP  (1 << 16)
#define CR0_PG  (1 << 31)
#define CR4_PAE (1 << 5)
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)
#define EFER_NXE (1 << 11)
#define BOOT_PTS 8                  /* the image must end below 16 MiB (link.ld checks) */
#define HYPERVISOR_IRET 23          /* __HYPERVISOR_iret, xen/xen.h */

    .section .note.xen, "a"
    elfnote XEN_ELFNOTE_PHYS32_ENTRY, 1f, 2f
1:  .long keel_pvh_start32
2:
    elfnote XEN_ELFNOTE_GUEST_OS, 3f, 4f
3:  .asciz "keel"
4:
    elfnote XEN_ELFNOTE_XEN_VERSION, 5f, 6f
5:  .asciz "xen-3.0"
6:
    .balign 4

    .section .text.boot, "ax"
    .code32
    .globl keel_pvh_start32
keel_pvh_start32:
    cli
    cld
    mov %ebx, %esi                  /* keep the start_info address */

    /* Early proof of life on the Xen debug port (shows as "(dN) ..." in xl dmesg). */
    mov $0xe9, %dx
    mov $'k', %al
    outb %al, %dx

    /* NX is required: every data page has it set, and without EFER.NXE it is a reserved bit. */
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb no_nx
    mov $0x80000001, %eax
    cpuid
    bt $20, %edx
    jnc no_nx

    /* One PT entry per image page, indexed by address (boot_pt covers [0, BOOT_PTS * 2 MiB)). */
    mov $__image_start, %ebx
1:  cmp $__image_end, %ebx
    jae 4f
    mov %ebx, %eax
    or $0x001, %eax                 /* present, read-only */
    mov $0x80000000, %edx           /* NX (bit 63) */
    cmp $__text_end, %ebx
    jae 2f
    xor %edx, %edx                  /* text: executable */
    jmp 3f
2:  cmp $__data_start, %ebx
    jb 3f                           /* rodata */
    cmp $__data_end, %ebx
    jae 3f                          /* symbols */
    cmp $__stack_guard, %ebx
    je 5f                           /* guard pages stay absent */
    cmp $__ist_guard, %ebx
    je 5f
    or $0x002, %eax                 /* data: writable */
3:  mov %ebx, %edi
    shr $12, %edi
    mov %eax, boot_pt(,%edi,8)
    mov %edx, boot_pt+4(,%edi,8)
5:  add $4096, %ebx
    jmp 1b

    /* PD[0..BOOT_PTS) -> the PTs; PDPT[0] -> PD; PML4[0] -> PDPT (tables: present + writable,
     * the leaves decide). */
4:  mov $boot_pd, %edi
    mov $boot_pt + 0x003, %eax
    xor %ecx, %ecx
6:  mov %eax, (%edi,%ecx,8)
    add $4096, %eax
    inc %ecx
    cmp $BOOT_PTS, %ecx
    jb 6b
    movl $boot_pd + 0x003, boot_pdpt
    movl $boot_pdpt + 0x003, boot_pml4

    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $(EFER_LME | EFER_NXE), %eax
    wrmsr
    mov %cr0, %eax
    or $(CR0_PE | CR0_PG | CR0_WP), %eax
    mov %eax, %cr0

    lgdt keel_gdt_desc
    ljmp $0x08, $start64

    .code64
start64:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    mov $__stack_top, %rsp
    mov %esi, %edi                  /* zero-extends: start_info paddr is below 4 GiB */
    xor %ebp, %ebp                  /* terminates backtraces */
    call keel_boot
2:  hlt
    jmp 2b

    .code32
no_nx:
    mov $0xe9, %dx
    mov $'!', %al                   /* "k!": no NX on this CPU; keel refuses to run without it */
    outb %al, %dx
7:  hlt
    jmp 7b
    .code64

/* ---- Interrupt and exception entry ------------------------------------------------------
 * Each stub pushes an error code (a dummy 0 where the CPU pushes none), then the vector, then
 * the common path saves the registers so the stack holds a keel::xen::TrapFrame (r15 lowest),
 * aligns the stack to 16 bytes as the SysV ABI requires, and calls keel_trap(frame). */
    .text
.macro trap_noerr vec
    .balign 16
trap_\vec:
    pushq $0
    pushq $\vec
    jmp trap_common
.endm
.macro trap_err vec
    .balign 16
trap_\vec:
    pushq $\vec
    jmp trap_common
.endm

trap_noerr 0
trap_noerr 1
trap_noerr 2
trap_noerr 3
trap_noerr 4
trap_noerr 5
trap_noerr 6
trap_noerr 7
trap_err   8
trap_noerr 9
trap_err   10
trap_err   11
trap_err   12
trap_err   13
trap_err   14
trap_noerr 15
trap_noerr 16
trap_err   17
trap_noerr 18
trap_noerr 19
trap_noerr 20
trap_err   21
trap_noerr 22
trap_noerr 23
trap_noerr 24
trap_noerr 25
trap_noerr 26
trap_noerr 27
trap_noerr 28
trap_err   29
trap_err   30
trap_noerr 31
trap_noerr 243                      /* event-channel upcall vector (KEEL_UPCALL_VECTOR) */

trap_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    mov %rsp, %rbx                  /* callee-saved: restore after the call */
    /* Unwind information for debuggers (gdb from dom0, crash dumps): while keel_trap runs, rbx
     * points at the TrapFrame, which holds the interrupted context. A signal frame ('S'), so gdb
     * looks up the interrupted rip as is, not rip - 1. CFA = the interrupted rsp ([rbx+160]);
     * every register at rbx + its TrapFrame offset. DWARF expressions written out by hand (gas
     * has no directive for "register saved at [reg+offset]" relative to another register):
     * 0x0f = DW_CFA_def_cfa_expression, 0x10 = DW_CFA_expression, 0x73 = DW_OP_breg3 (rbx)
     * with a signed LEB128 offset, 0x06 = DW_OP_deref. Only in .debug_frame: the image keeps no
     * .eh_frame. */
    .cfi_sections .debug_frame
    .cfi_startproc simple
    .cfi_signal_frame
    .cfi_escape 0x0f, 0x04, 0x73, 0xa0, 0x01, 0x06      /* CFA = [rbx+160] (rsp) */
    .cfi_escape 0x10, 0x10, 0x03, 0x73, 0x88, 0x01      /* rip (16) at rbx+136 */
    .cfi_escape 0x10, 0x00, 0x03, 0x73, 0xf0, 0x00      /* rax (0) at rbx+112 */
    .cfi_escape 0x10, 0x01, 0x03, 0x73, 0xd8, 0x00      /* rdx (1) at rbx+88 */
    .cfi_escape 0x10, 0x02, 0x03, 0x73, 0xe0, 0x00      /* rcx (2) at rbx+96 */
    .cfi_escape 0x10, 0x03, 0x03, 0x73, 0xe8, 0x00      /* rbx (3) at rbx+104 */
    .cfi_escape 0x10, 0x04, 0x03, 0x73, 0xd0, 0x00      /* rsi (4) at rbx+80 */
    .cfi_escape 0x10, 0x05, 0x03, 0x73, 0xc8, 0x00      /* rdi (5) at rbx+72 */
    .cfi_escape 0x10, 0x06, 0x03, 0x73, 0xc0, 0x00      /* rbp (6) at rbx+64 */
    .cfi_escape 0x10, 0x08, 0x02, 0x73, 0x38            /* r8 at rbx+56 */
    .cfi_escape 0x10, 0x09, 0x02, 0x73, 0x30            /* r9 at rbx+48 */
    .cfi_escape 0x10, 0x0a, 0x02, 0x73, 0x28            /* r10 at rbx+40 */
    .cfi_escape 0x10, 0x0b, 0x02, 0x73, 0x20            /* r11 at rbx+32 */
    .cfi_escape 0x10, 0x0c, 0x02, 0x73, 0x18            /* r12 at rbx+24 */
    .cfi_escape 0x10, 0x0d, 0x02, 0x73, 0x10            /* r13 at rbx+16 */
    .cfi_escape 0x10, 0x0e, 0x02, 0x73, 0x08            /* r14 at rbx+8 */
    .cfi_escape 0x10, 0x0f, 0x02, 0x73, 0x00            /* r15 at rbx+0 */
    .cfi_escape 0x10, 0x31, 0x03, 0x73, 0x98, 0x01      /* rflags (49) at rbx+152 */
    and $-16, %rsp
    cld
    call keel_trap
    mov %rbx, %rsp
    .cfi_endproc
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp                   /* vector + error code */
    cmpb $0, keel_pv_mode(%rip)
    jne 1f
    iretq
    /* Classic PV (ring 3): iretq cannot go back to the guest kernel; HYPERVISOR_iret restores
     * rip, cs, rflags (its IF becomes the event mask), rsp and ss from this frame and rax, r11
     * and rcx from what the hypercall page's iret stub pushes: push flags (0: not a syscall
     * return) and jump to the stub (xen-x86_64.h, struct iret_context). */
1:  pushq $0
    jmp keel_hypercall_page + HYPERVISOR_IRET * 32

/* Classic PV entries. Xen pushes the interrupted rcx and r11 below the hardware frame (and for
 * the failsafe callback ds, es, fs and gs as well, xen-x86_64.h); put them back into their
 * registers, drop the selectors, and go on as the native stubs do. */
.macro pv_trap vec
    .balign 16
pv_trap_\vec:
    pop %rcx
    pop %r11
    jmp trap_\vec
.endm
    .irp v, 0,1,3,4,5,6,7,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    pv_trap \v
    .endr
    .globl keel_pv_event_entry
    .balign 16
keel_pv_event_entry:
    pop %rcx
    pop %r11
    jmp trap_243
    .globl keel_pv_failsafe_entry
    .balign 16
keel_pv_failsafe_entry:
    pop %rcx
    pop %r11
    add $32, %rsp                   /* ds, es, fs, gs */
    pushq $0
    pushq $254                      /* pv_failsafe_vector (internal.h) */
    jmp trap_common

/* Table of stub addresses, indexed by vector 0..31; the upcall stub separately. */
    .section .rodata
    .balign 8
    .globl keel_trap_stubs
keel_trap_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad trap_\v
    .endr
    .globl keel_upcall_stub
keel_upcall_stub:
    .quad trap_243
    /* PV: the same order, 0 for the vectors Xen delivers otherwise (NMI) or not at all (#DF). */
    .globl keel_pv_trap_stubs
keel_pv_trap_stubs:
    .quad pv_trap_0, pv_trap_1, 0, pv_trap_3, pv_trap_4, pv_trap_5, pv_trap_6, pv_trap_7
    .quad 0, pv_trap_9, pv_trap_10, pv_trap_11, pv_trap_12, pv_trap_13, pv_trap_14, pv_trap_15
    .quad pv_trap_16, pv_trap_17, pv_trap_18, pv_trap_19, pv_trap_20, pv_trap_21, pv_trap_22, pv_trap_23
    .quad pv_trap_24, pv_trap_25, pv_trap_26, pv_trap_27, pv_trap_28, pv_trap_29, pv_trap_30, pv_trap_31

/* ---- Boot data ---------------------------------------------------------------------------- */
    .data
    .balign 16
    .globl keel_gdt
keel_gdt:
    .quad 0                         /* null */
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit code, DPL 0 */
    .quad 0x00cf92000000ffff        /* 0x10: data, DPL 0 */
    .quad 0, 0                      /* 0x18: TSS (16 bytes), filled in by traps.cc */
keel_gdt_end:
    .globl keel_gdt_desc
keel_gdt_desc:
    .word keel_gdt_end - keel_gdt - 1
    .quad keel_gdt

    .bss
    .balign 4096
    .globl boot_pml4
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd:   .skip 4096
boot_pt:   .skip BOOT_PTS * 4096

    .section .note.GNU-stack, "", @progbits
