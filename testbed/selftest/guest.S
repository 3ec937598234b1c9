/* keel-selftest: the smallest PVH guest. Xen starts it in 32-bit protected mode with paging
 * off at the address in its XEN_ELFNOTE_PHYS32_ENTRY note; it prints one line to the debug
 * port 0xE9 (Xen shows it in `xl dmesg` as "(dN) keel-selftest ok") and idles with interrupts
 * enabled (hlt with interrupts disabled would end the vCPU). */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define DEBUG_PORT 0xe9

        .section .note.Xen, "a", @note
        .balign 4
        .long   2f - 1f                 /* name size */
        .long   4f - 3f                 /* descriptor size */
        .long   XEN_ELFNOTE_PHYS32_ENTRY
1:      .asciz  "Xen"
2:      .balign 4
3:      .long   _start                  /* 32-bit physical entry point */
4:      .balign 4

        .text
        .code32
        .globl  _start
_start:
        cli
        cld
        movl    $message, %esi
        movl    $message_end - message, %ecx
        movw    $DEBUG_PORT, %dx
1:      lodsb
        outb    %al, %dx
        loop    1b
2:      sti
        hlt
        jmp     2b

        .section .rodata
message:
        .ascii  "keel-selftest ok\n"
message_end:
