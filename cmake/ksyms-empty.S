/* Empty symbol table for the first link pass (see keel_add_service); layout in gen-ksyms.sh. */
    .section .ksyms, "a"
    .balign 8
    .globl keel_ksyms
keel_ksyms:
    .long 0         /* count */
    .short 0, 0     /* ntok, entries_off */
