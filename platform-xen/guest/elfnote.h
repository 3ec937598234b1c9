/* Xen ELF notes (xen/elfnote.h), for the entry files: entry.S carries the PVH entry note and
 * the notes both loaders read, pv_entry.S the classic PV ones. Assembler only. */
#pragma once

#define XEN_ELFNOTE_ENTRY          1
#define XEN_ELFNOTE_HYPERCALL_PAGE 2
#define XEN_ELFNOTE_VIRT_BASE      3
#define XEN_ELFNOTE_PADDR_OFFSET   4
#define XEN_ELFNOTE_XEN_VERSION    5
#define XEN_ELFNOTE_GUEST_OS       6
#define XEN_ELFNOTE_LOADER         8
#define XEN_ELFNOTE_PHYS32_ENTRY  18

/* One note named "Xen": `elfnote TYPE, 1f, 2f` then the descriptor between labels 1 and 2. */
.macro elfnote type, desc_begin, desc_end
    .balign 4
    .long 4                       /* namesz: "Xen\0" */
    .long \desc_end - \desc_begin
    .long \type
    .asciz "Xen"
    .balign 4
.endm
