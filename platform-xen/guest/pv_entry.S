/* Classic 64-bit PV entry (docs/pv.md). The same image boots as PVH (entry.S: keel_pvh_start32,
 * XEN_ELFNOTE_PHYS32_ENTRY) and as PV: a PV domain builder ignores the PVH note and reads the
 * notes below (xen/elfnote.h). Xen enters keel_pv_start64 in 64-bit mode, in ring 3, with
 * upcalls masked, %rsi = the virtual address of start_info_t and %rsp = the bootstrap stack, the
 * last bootstrap element (xen/xen.h, "Start-of-day memory layout"); it has filled the hypercall
 * page already. VIRT_BASE 0 and PADDR_OFFSET 0: the image runs at its link addresses, as in PVH,
 * and the bootstrap region maps pfn p at virtual p * 4096. GUEST_OS ("keel") and XEN_VERSION
 * ("xen-3.0") are in entry.S and count for both loaders. */

#include "elfnote.h"

    .section .note.xen, "a"
    elfnote XEN_ELFNOTE_ENTRY, 1f, 2f
1:  .quad keel_pv_start64
2:
    elfnote XEN_ELFNOTE_HYPERCALL_PAGE, 3f, 4f
3:  .quad keel_hypercall_page
4:
    elfnote XEN_ELFNOTE_VIRT_BASE, 5f, 6f
5:  .quad 0
6:
    elfnote XEN_ELFNOTE_PADDR_OFFSET, 7f, 8f
7:  .quad 0
8:
    elfnote XEN_ELFNOTE_LOADER, 9f, 10f
9:  .asciz "generic"              /* libelf loads only "generic" or Linux images */
10:
    .balign 4

/* .text.boot: link.ld KEEPs it (the roots of --gc-sections). */
    .section .text.boot, "ax"
    .code64
    .globl keel_pv_start64
keel_pv_start64:
    cld
    mov %rsi, %rdi                  /* keel_pv_boot(start_info, bootstrap stack top) */
    mov %rsp, %rsi
    mov $__stack_top, %rsp          /* our boot stack, 16-byte aligned before the call */
    xor %ebp, %ebp                  /* terminates backtraces */
    call keel_pv_boot
    ud2                             /* keel_pv_boot does not return */

    .section .note.GNU-stack, "", @progbits
