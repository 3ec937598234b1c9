/* Empty symbol table for the first link pass (see keel_add_service). */
    .section .ksyms, "a"
    .balign 8
    .globl keel_ksyms
keel_ksyms:
    .quad 0
