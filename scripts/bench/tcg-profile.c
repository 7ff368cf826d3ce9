/*
 * A TCG plugin for QEMU (API version 1, QEMU 7.2) that profiles the guest: it counts the guest instructions
 * each translation block executes and, when QEMU exits, writes one line per block start address,
 * `ADDRESS INSTRUCTIONS EXECUTIONS`, to the file named by its `out=PATH` argument. scripts/bench/profile.sh
 * builds it, runs the router VM under load with `-plugin`, and maps the addresses onto the image's symbols.
 * Under TCG there is no perf for the guest; executed instructions per function are the next best measure.
 *
 * Only the few entry points used are declared here (QEMU exports them from its own binary).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
typedef void (*trans_cb_t)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*udata_cb_t)(qemu_plugin_id_t, void *);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, int op, void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb_t cb, void *userdata);

#define EXPORT __attribute__((visibility("default")))
#define INLINE_ADD_U64 0

EXPORT int qemu_plugin_version = 1;

/* One per translation (a block translated twice gets two; the report sums them by address). Never freed:
 * the inline counters point into them for the life of the VM. */
struct block {
    uint64_t vaddr;
    uint64_t insns;
    uint64_t execs;
    struct block *next;
};

static struct block *blocks;
static char out_path[4096] = "tcg-profile.txt";

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    struct block *b = calloc(1, sizeof(*b));
    (void)id;
    if (!b) {
        return;
    }
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    b->next = blocks;
    blocks = b;
    /* Single vCPU: the non-atomic inline add is exact. */
    qemu_plugin_register_vcpu_tb_exec_inline(tb, INLINE_ADD_U64, &b->insns, qemu_plugin_tb_n_insns(tb));
    qemu_plugin_register_vcpu_tb_exec_inline(tb, INLINE_ADD_U64, &b->execs, 1);
}

static void write_report(qemu_plugin_id_t id, void *userdata)
{
    FILE *f = fopen(out_path, "w");
    (void)id;
    (void)userdata;
    if (!f) {
        return;
    }
    for (struct block *b = blocks; b; b = b->next) {
        if (b->execs) {
            fprintf(f, "%" PRIx64 " %" PRIu64 " %" PRIu64 "\n", b->vaddr, b->insns, b->execs);
        }
    }
    fclose(f);
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            snprintf(out_path, sizeof(out_path), "%s", argv[i] + 4);
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, write_report, NULL);
    return 0;
}
