/* A stand-in for Qubes' dom0 QubesDB daemon, for the nested-Xen lab (Qubes' own daemon is not packaged in
 * Debian). Speaks QubesDB's protocol (qubes-core-qubesdb include/qubesdb.h: a 72-byte header, u8 type,
 * char path[64], 3 pad bytes, u32 data_len, then the value) as the vchan server of port 111, with Debian's
 * libxenvchan, for one VM:
 *
 *   qubesdb-standin DOMID KEYS [UPDATE [UPDATE2]]
 *
 * KEYS: lines `key=value`, the VM's database, sent on the VM's MULTIREAD. On SIGUSR1, UPDATE is read (on
 * SIGUSR2, UPDATE2): lines `key=value` are sent as WRITE, lines `-key` as RM (a trailing '/' removes a
 * subtree), in order.
 * Logs every step on stdout as `QDB ...`. Exits when the VM disconnects or on SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <libxenvchan.h>

enum { CMD_WRITE = 1, CMD_MULTIREAD = 2, CMD_RM = 4, RESP_OK = 7, RESP_MULTIREAD = 11 };
#define MAX_PATH 64
#define MAX_DATA 3072

struct hdr {
    uint8_t type;
    char path[MAX_PATH];
    uint8_t pad[3];
    uint32_t data_len;
} __attribute__((packed));

static volatile sig_atomic_t update_wanted, stop;
static void on_usr1(int s) { (void)s; update_wanted = 1; }
static void on_usr2(int s) { (void)s; update_wanted = 2; }
static void on_term(int s) { (void)s; stop = 1; }

static int send_msg(struct libxenvchan *v, int type, const char *path, const char *data, size_t len)
{
    struct hdr h;
    memset(&h, 0, sizeof h);
    h.type = type;
    if (strlen(path) >= MAX_PATH || len > MAX_DATA) {
        printf("QDB skip oversized %s\n", path);
        return 0;
    }
    strcpy(h.path, path);
    h.data_len = len;
    if (libxenvchan_send(v, &h, sizeof h) != (int)sizeof h)
        return -1;
    if (len && libxenvchan_send(v, data, len) != (int)len)
        return -1;
    return 0;
}

/* Calls fn(key, value) for each `key=value` line of path (value NULL for `-key`). */
static int each_line(const char *path, int (*fn)(struct libxenvchan *, char *, char *), struct libxenvchan *v)
{
    char line[MAX_PATH + MAX_DATA + 8];
    FILE *f = fopen(path, "r");
    int n = 0;
    if (!f) {
        printf("QDB cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        char *eq = strchr(line, '=');
        if (line[0] == '-') {
            if (fn(v, line + 1, NULL) < 0) { fclose(f); return -1; }
        } else if (eq) {
            *eq = 0;
            if (fn(v, line, eq + 1) < 0) { fclose(f); return -1; }
        } else {
            continue;
        }
        n++;
    }
    fclose(f);
    return n;
}

static int dump_one(struct libxenvchan *v, char *key, char *value)
{
    return value ? send_msg(v, RESP_MULTIREAD, key, value, strlen(value)) : 0;
}

static int update_one(struct libxenvchan *v, char *key, char *value)
{
    if (value) {
        printf("QDB write %s = %s\n", key, value);
        return send_msg(v, CMD_WRITE, key, value, strlen(value));
    }
    printf("QDB rm %s\n", key);
    return send_msg(v, CMD_RM, key, "", 0);
}

int main(int argc, char **argv)
{
    char xs_path[128];
    struct libxenvchan *v;
    int domid, oks = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: %s DOMID KEYS [UPDATE]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    domid = atoi(argv[1]);
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    signal(SIGTERM, on_term);
    /* As Qubes' libvchan names it: /local/domain/<server>/data/vchan/<client>/<port>; dom0 is 0. */
    snprintf(xs_path, sizeof xs_path, "/local/domain/0/data/vchan/%d/111", domid);
    /* qubesdb-daemon asks for 4096 bytes each way: one granted page per ring. */
    v = libxenvchan_server_init(NULL, domid, xs_path, 4096, 4096);
    if (!v) {
        printf("QDB vchan server_init for domain %d failed: %s\n", domid, strerror(errno));
        return 1;
    }
    v->blocking = 1;
    printf("QDB serving domain %d at %s\n", domid, xs_path);

    while (!stop) {
        fd_set rd;
        struct timeval tv = { 0, 200000 };
        int fd = libxenvchan_fd_for_select(v);

        if (update_wanted && v->ring->cli_live == 1) {
            int which = update_wanted; /* 1: UPDATE, 2: UPDATE2 */
            update_wanted = 0;
            if (argc < 3 + which || each_line(argv[2 + which], update_one, v) < 0)
                printf("QDB update%s failed\n", which == 2 ? "2" : "");
            else
                printf("QDB update%s sent\n", which == 2 ? "2" : "");
        }
        FD_ZERO(&rd);
        FD_SET(fd, &rd);
        int r = select(fd + 1, &rd, NULL, NULL, &tv);
        if (r < 0) {
            if (errno == EINTR)
                continue; /* SIGUSR1: the set is undefined, and waiting now would block */
            break;
        }
        if (r > 0 && FD_ISSET(fd, &rd))
            libxenvchan_wait(v);
        if (v->ring->cli_live == 0) {
            printf("QDB client disconnected (%d OKs received)\n", oks);
            break;
        }
        while (libxenvchan_data_ready(v) >= (int)sizeof(struct hdr)) {
            struct hdr h;
            char data[MAX_DATA + 1];
            if (libxenvchan_recv(v, &h, sizeof h) != (int)sizeof h)
                goto out;
            h.path[MAX_PATH - 1] = 0;
            if (h.data_len > MAX_DATA) {
                printf("QDB bad length %u from the VM\n", h.data_len);
                goto out;
            }
            if (h.data_len && libxenvchan_recv(v, data, h.data_len) != (int)h.data_len)
                goto out;
            data[h.data_len] = 0;
            switch (h.type) {
            case CMD_MULTIREAD: {
                int n = each_line(argv[2], dump_one, v);
                if (n < 0 || send_msg(v, RESP_MULTIREAD, "", "", 0) < 0)
                    goto out;
                printf("QDB multiread: sent %d keys\n", n);
                break;
            }
            case CMD_WRITE:
                printf("QDB VM wrote %s = %s\n", h.path, data);
                send_msg(v, RESP_OK, h.path, "", 0);
                break;
            case RESP_OK:
                oks++;
                printf("QDB OK %s\n", h.path);
                break;
            default:
                printf("QDB message type %d for %s ignored\n", h.type, h.path);
            }
        }
    }
out:
    libxenvchan_close(v);
    return 0;
}
