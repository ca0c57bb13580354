/*
 * hull's guest agent: PID 1 of a hull virtual machine (the one C program of hull; built static with musl
 * by scripts/setup.sh, placed as /init of the guest initramfs that src/vm/initramfs.ts writes).
 *
 * Boot: mount /dev /proc /sys of the initramfs, load the kernel modules listed in /hull/modules (in
 * dependency order, worked out on the host), open the agent channel (a virtio-serial port named
 * org.hull.agent, or a UART such as /dev/ttyS1 with the emulated device model), wait for the root disk, mount
 * it and move it over / (the initramfs stays behind as rootfs; switch_root's trick without freeing it), mount
 * the API filesystems inside (cgroup2 alone at /sys/fs/cgroup, as on a pure cgroup v2 host), and say READY. Then serve the host.
 *
 * Protocol (src/vm/protocol.ts is the host side): frames of a 9-byte header (type byte, session u32 LE,
 * length u32 LE) and a payload of at most 64 KiB. Session 0 is the instance's main process; exec sessions
 * take the numbers the host gives them.
 *   host → guest: 'S' start main / 'X' exec (payload: NUL-terminated key, value pairs; for 'S' also
 *                 "nic" interfaces to configure, the "hosts"/"resolv" files, the "mount" volumes and the
 *                 "sysctl" settings; 'F' status 125 when a volume cannot be mounted or a sysctl cannot be
 *                 set), 'I' stdin (empty =
 *                 end of input), 'K' signal (u32 signal number; session 0xffffffff = every process),
 *                 'W' terminal size (u16 rows, u16 cols), 'N' count the guest's processes, 'Q' sync the
 *                 disks and power off
 *                 'A' (template clones only) the instance: "entropy" (hex bytes credited to the guest RNG,
 *                 then the CRNG reseeded), "time" ("SEC NSEC", set as CLOCK_REALTIME), "root" (the disk), "ro",
 *                 "mac" ("TEMPLATE-MAC INSTANCE-MAC" per NIC); the held-back disk and NIC drivers load then
 *   guest → host: 'T' template mode (hull.template=1): booted, waiting for 'A' (the host saves the VM now),
 *                 'R' ready (payload: kernel release), 'P' started (u32 pid), 'O' stdout, 'E' stderr,
 *                 'Z' exited (i32 status: the code, or 128+N for signal N; for session 0 then u32: the
 *                 OOM kills since boot, /proc/vmstat oom_kill, when readable), 'F' failed to start (i32
 *                 status 126/127, then a message), 'N' the number of processes (u32; kernel threads and the
 *                 agent not counted)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAYLOAD 65536
#define MAX_SESSIONS 64
#define ALL_SESSIONS 0xffffffffu

extern char **environ;

struct session {
  int used;
  uint32_t id;
  pid_t pid;
  int out;   /* stdout (or the pty master) */
  int err;   /* stderr, -1 with a pty */
  int in;    /* stdin of the process, -1 when closed */
  int tty;
  int exited;
  int status;
};

static struct session sessions[MAX_SESSIONS];
static int chan = -1;
static int sigpipe_fds[2];

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...) {
  /* the kernel console (/dev/console is the serial port): read by hull on failures */
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "hull-agent: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

static void die(const char *what) {
  logmsg("fatal: %s: %s", what, strerror(errno));
  sync();
  reboot(RB_POWER_OFF);
  _exit(1);
}

static void write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        poll(&pfd, 1, 100);
        continue;
      }
      return; /* the host went away: nothing to do but carry on */
    }
    p += n;
    len -= (size_t)n;
  }
}

static void send_frame(char type, uint32_t session, const void *data, uint32_t len) {
  unsigned char h[9];
  h[0] = (unsigned char)type;
  memcpy(h + 1, &session, 4);
  memcpy(h + 5, &len, 4);
  /* one write per frame where it fits: the serial port's writes are not split between frames */
  if (len <= 16384) {
    unsigned char buf[9 + 16384];
    memcpy(buf, h, 9);
    if (len) memcpy(buf + 9, data, len);
    write_all(chan, buf, 9 + len);
  } else {
    write_all(chan, h, 9);
    write_all(chan, data, len);
  }
}

static void send_status(char type, uint32_t session, int32_t status, const char *msg) {
  char buf[512];
  memcpy(buf, &status, 4);
  size_t n = 4;
  if (msg) {
    size_t m = strlen(msg);
    if (m > sizeof buf - 4) m = sizeof buf - 4;
    memcpy(buf + 4, msg, m);
    n += m;
  }
  send_frame(type, session, buf, (uint32_t)n);
}

/* ---- boot ---- */

static char cmdline[4096];

static const char *cmdline_arg(const char *key) {
  static char val[256];
  size_t kl = strlen(key);
  char *p = cmdline;
  while (*p) {
    while (*p == ' ') p++;
    if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
      char *v = p + kl + 1;
      size_t n = strcspn(v, " \n");
      if (n >= sizeof val) n = sizeof val - 1;
      memcpy(val, v, n);
      val[n] = 0;
      return val;
    }
    p += strcspn(p, " ");
  }
  return NULL;
}

/* template mode (hull.template=1 on the command line, src/vm/template.ts): the VM is booted once, saved when
 * the agent says 'T', and restored for each instance. The disk's and the NICs' drivers are not loaded before
 * the save: they probe after the restore, when the instance's own disk and taps are behind the devices. */
static int template_mode;
static char deferred_modules[8][512];
static int deferred_count;

static int deferred_module(const char *path) {
  static const char *const names[] = {"/virtio_blk.ko", "/virtio_net.ko", "/net_failover.ko", "/failover.ko"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    size_t n = strlen(path), m = strlen(names[i]);
    if (n >= m && strcmp(path + n - m, names[i]) == 0) return 1;
  }
  return 0;
}

static void load_modules(const char *list) {
  FILE *f = fopen(list, "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    if (!line[0]) continue;
    if (template_mode && deferred_module(line) && deferred_count < 8) {
      snprintf(deferred_modules[deferred_count++], sizeof deferred_modules[0], "%s", line);
      continue;
    }
    int fd = open(line, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      logmsg("module %s: %s", line, strerror(errno));
      continue;
    }
    if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST) logmsg("loading %s: %s", line, strerror(errno));
    close(fd);
  }
  fclose(f);
}

/* the volumes' modules (virtiofs): opened at boot, while the initramfs is still /, and loaded only when the
 * main process has volumes, so that boots without them do not pay for them */
static int volume_module_fds[16];
static int volume_modules;

static void open_volume_modules(void) {
  FILE *f = fopen("/hull/modules-volumes", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f) && volume_modules < 16) {
    line[strcspn(line, "\n")] = 0;
    if (!line[0]) continue;
    int fd = open(line, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) volume_module_fds[volume_modules++] = fd;
    else logmsg("module %s: %s", line, strerror(errno));
  }
  fclose(f);
}

static void load_volume_modules(void) {
  for (int i = 0; i < volume_modules; i++) {
    if (syscall(SYS_finit_module, volume_module_fds[i], "", 0) != 0 && errno != EEXIST) logmsg("loading a volume module: %s", strerror(errno));
    close(volume_module_fds[i]);
  }
  volume_modules = 0;
}

static void msleep(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* the virtio-serial port named NAME, as /dev/vportNpM */
static int find_vport(const char *name, char *path, size_t size) {
  DIR *d = opendir("/sys/class/virtio-ports");
  if (!d) return -1;
  struct dirent *e;
  int found = -1;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[300], buf[128];
    snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/name", e->d_name);
    int fd = open(p, O_RDONLY);
    if (fd < 0) continue;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) continue;
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    if (strcmp(buf, name) == 0) {
      snprintf(path, size, "/dev/%s", e->d_name);
      found = 0;
      break;
    }
  }
  closedir(d);
  return found;
}

static void open_channel(void) {
  const char *spec = cmdline_arg("hull.chan");
  if (!spec) spec = "virtio:org.hull.agent";
  char path[300];
  for (int i = 0; i < 2000; i++) { /* up to 10 s: devices appear as their drivers probe */
    if (strncmp(spec, "virtio:", 7) == 0) {
      if (find_vport(spec + 7, path, sizeof path) == 0) chan = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
    } else {
      snprintf(path, sizeof path, "%s", spec);
      chan = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
      if (chan >= 0) {
        /* a UART: raw 8-bit, no echo, no line discipline */
        struct termios t;
        if (tcgetattr(chan, &t) == 0) {
          cfmakeraw(&t);
          cfsetspeed(&t, B115200);
          tcsetattr(chan, TCSANOW, &t);
        }
      }
    }
    if (chan >= 0) return;
    msleep(5);
  }
  errno = ENODEV;
  logmsg("no agent channel %s after 10 s: the kernel lacks the driver for it (virtio_console and virtio-mmio/pci, or the 8250 UART)", spec);
  die("no agent channel");
}

/* cgroup v2 only (no v1 hierarchy), as systemd sets a host up: /sys/fs/cgroup is the unified hierarchy with
 * every available controller (cpu, cpuset, io, memory, pids, …) enabled for children, so that runtimes inside
 * the VM (runc, crun, a nested hull) can put limits on their containers. */
static void mount_cgroup2(void) {
  if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate") != 0) {
    logmsg("mounting cgroup2 at /sys/fs/cgroup: %s", strerror(errno));
    return;
  }
  char ctrls[512];
  int fd = open("/sys/fs/cgroup/cgroup.controllers", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, ctrls, sizeof ctrls - 1) : -1;
  if (fd >= 0) close(fd);
  ctrls[n > 0 ? n : 0] = 0;
  int sc = open("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY | O_CLOEXEC);
  if (sc < 0) return;
  /* one write per controller: one that cannot be enabled does not keep the others off */
  for (char *save = NULL, *c = strtok_r(ctrls, " \n", &save); c; c = strtok_r(NULL, " \n", &save)) {
    char w[64];
    int len = snprintf(w, sizeof w, "+%s", c);
    if (write(sc, w, (size_t)len) != len) logmsg("enabling the %s cgroup controller: %s", c, strerror(errno));
  }
  close(sc);
}

static char attach_root[256];
static int attach_ro;

static void mount_root(void) {
  const char *dev = attach_root[0] ? attach_root : cmdline_arg("hull.root");
  if (!dev) dev = "/dev/vda";
  char devpath[256];
  snprintf(devpath, sizeof devpath, "%s", dev);
  const char *fstype = cmdline_arg("hull.rootfstype");
  char fs[64];
  snprintf(fs, sizeof fs, "%s", fstype ? fstype : "ext4");
  struct stat st;
  for (int i = 0; i < 2000 && stat(devpath, &st) != 0; i++) msleep(5);
  mkdir("/newroot", 0755);
  if (mount(devpath, "/newroot", fs, MS_NOATIME, "") != 0) die("mounting the root disk");
  if (chdir("/newroot") != 0) die("chdir /newroot");
  if (mount(".", "/", NULL, MS_MOVE, NULL) != 0) die("moving the root disk over /");
  if (chroot(".") != 0) die("chroot");
  if (chdir("/") != 0) die("chdir /");
  mkdir("/proc", 0555);
  mkdir("/sys", 0555);
  mkdir("/dev", 0755);
  mkdir("/tmp", 01777);
  mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
  mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
  mount_cgroup2();
  mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  mkdir("/dev/pts", 0755);
  mkdir("/dev/shm", 01777);
  mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
  mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777");
  /* the initramfs devtmpfs had /dev/ptmx as a char device; with newinstance it must point at pts/ptmx */
  unlink("/dev/ptmx");
  symlink("pts/ptmx", "/dev/ptmx");
  symlink("/proc/self/fd", "/dev/fd");
  symlink("/proc/self/fd/0", "/dev/stdin");
  symlink("/proc/self/fd/1", "/dev/stdout");
  symlink("/proc/self/fd/2", "/dev/stderr");
  /* --read-only: the root disk turns read-only once the main process's volumes have their mount points
   * (finish_root, on 'S'); exec sessions cannot come before that */
}

static void finish_root(void) {
  if ((attach_ro || cmdline_arg("hull.ro")) && mount("", "/", "", MS_REMOUNT | MS_RDONLY | MS_NOATIME, "") != 0) die("remounting / read-only");
}

/* ---- processes ---- */

struct spec {
  char *argv[256];
  int argc;
  char *envp[512];
  int envc;
  const char *cwd, *user, *hostname;
  int tty, stdin_open;
  unsigned short rows, cols;
  /* main process only: "MAC NAME ADDRESS/PREFIX GATEWAY|- MTU" per interface, /etc/hosts, /etc/resolv.conf */
  char *nics[16];
  int nicc;
  const char *hosts, *resolv;
  /* main process only: volumes, "TYPE SOURCE ro|rw TARGET" each, parents first */
  char *mounts[64];
  int mountc;
  /* main process only: --sysctl "KEY=VALUE" each, written to /proc/sys before it starts */
  char *sysctls[64];
  int sysctlc;
};

static void parse_spec(char *p, uint32_t len, struct spec *s) {
  memset(s, 0, sizeof *s);
  char *end = p + len;
  while (p < end) {
    char *k = p;
    p += strnlen(p, (size_t)(end - p)) + 1;
    if (p >= end) break;
    char *v = p;
    p += strnlen(p, (size_t)(end - p)) + 1;
    if (!strcmp(k, "arg") && s->argc < 255) s->argv[s->argc++] = v;
    else if (!strcmp(k, "env") && s->envc < 511) s->envp[s->envc++] = v;
    else if (!strcmp(k, "cwd")) s->cwd = v;
    else if (!strcmp(k, "user")) s->user = v;
    else if (!strcmp(k, "hostname")) s->hostname = v;
    else if (!strcmp(k, "tty")) s->tty = v[0] == '1';
    else if (!strcmp(k, "stdin")) s->stdin_open = v[0] == '1';
    else if (!strcmp(k, "rows")) s->rows = (unsigned short)atoi(v);
    else if (!strcmp(k, "cols")) s->cols = (unsigned short)atoi(v);
    else if (!strcmp(k, "nic") && s->nicc < 16) s->nics[s->nicc++] = v;
    else if (!strcmp(k, "hosts")) s->hosts = v;
    else if (!strcmp(k, "resolv")) s->resolv = v;
    else if (!strcmp(k, "mount") && s->mountc < 64) s->mounts[s->mountc++] = v;
    else if (!strcmp(k, "sysctl") && s->sysctlc < 64) s->sysctls[s->sysctlc++] = v;
  }
  s->argv[s->argc] = NULL;
  s->envp[s->envc] = NULL;
}

/* ---- volumes ---- */

static int mkdir_p(const char *path) {
  char p[4096];
  snprintf(p, sizeof p, "%s", path);
  for (char *q = p + 1; *q; q++) {
    if (*q != '/') continue;
    *q = 0;
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
    *q = '/';
  }
  if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
  return 0;
}

/* tmpfs options: the flag words become mount flags, the rest (size=, mode=, …) the data */
static unsigned long tmpfs_options(const char *opts, char *data, size_t size) {
  static const struct { const char *name; unsigned long set, clear; } flags[] = {
    {"ro", MS_RDONLY, 0}, {"rw", 0, MS_RDONLY}, {"nosuid", MS_NOSUID, 0}, {"suid", 0, MS_NOSUID},
    {"nodev", MS_NODEV, 0}, {"dev", 0, MS_NODEV}, {"noexec", MS_NOEXEC, 0}, {"exec", 0, MS_NOEXEC},
    {"noatime", MS_NOATIME, 0}, {"atime", 0, MS_NOATIME}, {"sync", MS_SYNCHRONOUS, 0}, {"async", 0, MS_SYNCHRONOUS},
  };
  unsigned long f = MS_NOSUID | MS_NODEV; /* as a container's --tmpfs */
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", strcmp(opts, "-") ? opts : "");
  data[0] = 0;
  for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
    size_t i, n = sizeof flags / sizeof flags[0];
    for (i = 0; i < n && strcmp(w, flags[i].name); i++) {}
    if (i < n) {
      f = (f | flags[i].set) & ~flags[i].clear;
    } else {
      size_t l = strlen(data);
      snprintf(data + l, size - l, "%s%s", l ? "," : "", w);
    }
  }
  return f;
}

/* One volume of the main process; 0, or -1 with `err` saying what failed. */
static int setup_mount(const char *line, char *err, size_t errsize) {
  char type[16], source[1024], mode[4];
  int off = 0;
  if (sscanf(line, "%15s %1023s %3s %n", type, source, mode, &off) != 3 || off == 0 || line[off] != '/') {
    snprintf(err, errsize, "bad mount spec: %s", line);
    return -1;
  }
  const char *target = line + off;
  if (mkdir_p(target) != 0) {
    snprintf(err, errsize, "cannot create the mount point %s for a volume: %s%s", target, strerror(errno),
             errno == EROFS ? " (the image lacks it; create it in the image, or drop --read-only)" : "");
    return -1;
  }
  int rc;
  if (!strcmp(type, "virtiofs")) {
    unsigned long f = MS_NOATIME | (!strcmp(mode, "ro") ? MS_RDONLY : 0);
    /* the device may still be probing right after boot: an unknown tag is EINVAL for a moment */
    for (int i = 0; (rc = mount(source, target, "virtiofs", f, "")) != 0 && (errno == EINVAL || errno == ENODEV) && i < 400; i++) msleep(5);
  } else if (!strcmp(type, "tmpfs")) {
    char data[1024];
    unsigned long f = tmpfs_options(source, data, sizeof data);
    rc = mount("tmpfs", target, "tmpfs", f, data);
  } else {
    snprintf(err, errsize, "unknown volume type %s", type);
    return -1;
  }
  if (rc != 0) {
    snprintf(err, errsize, "mounting the %s volume at %s: %s%s", type, target, strerror(errno),
             !strcmp(type, "virtiofs") && errno == ENODEV ? " (the kernel lacks virtiofs)" : "");
    return -1;
  }
  return 0;
}

/* One --sysctl "KEY=VALUE": the key's dots are /proc/sys's slashes (as runc); 0, or -1 with `err` set. */
static int set_sysctl(const char *kv, char *err, size_t errsize) {
  const char *eq = strchr(kv, '=');
  if (!eq || eq == kv) {
    snprintf(err, errsize, "bad sysctl: %s", kv);
    return -1;
  }
  char path[512];
  size_t n = (size_t)snprintf(path, sizeof path, "/proc/sys/");
  for (const char *k = kv; k < eq && n < sizeof path - 1; k++) path[n++] = *k == '.' ? '/' : *k;
  path[n] = 0;
  size_t len = strlen(eq + 1);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, eq + 1, len) != (ssize_t)len) {
    int e = errno;
    if (fd >= 0) close(fd);
    snprintf(err, errsize, "sysctl %.*s: %s", (int)(eq - kv), kv, strerror(e));
    return -1;
  }
  close(fd);
  return 0;
}

/* ---- network ---- */

static int if_flags(int fd, const char *name, short set, short clear) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "%.*s", IFNAMSIZ - 1, name);
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) return -1;
  ifr.ifr_flags = (short)((ifr.ifr_flags | set) & ~clear);
  return ioctl(fd, SIOCSIFFLAGS, &ifr);
}

static void set_sockaddr(struct sockaddr *sa, in_addr_t addr) {
  struct sockaddr_in *in = (struct sockaddr_in *)sa;
  memset(in, 0, sizeof *in);
  in->sin_family = AF_INET;
  in->sin_addr.s_addr = addr;
}

/* The interface whose MAC is `mac` (lower-case aa:bb:...), by /sys/class/net/NAME/address; 0 when found. */
static int iface_by_mac(const char *mac, char *name, size_t size) {
  DIR *d = opendir("/sys/class/net");
  if (!d) return -1;
  struct dirent *e;
  int found = -1;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[300], addr[64] = {0};
    snprintf(path, sizeof path, "/sys/class/net/%s/address", e->d_name);
    int fd = open(path, O_RDONLY);
    if (fd < 0) continue;
    ssize_t n = read(fd, addr, sizeof addr - 1);
    close(fd);
    if (n > 0 && addr[n - 1] == '\n') addr[n - 1] = 0;
    if (!strcasecmp(addr, mac)) {
      snprintf(name, size, "%.*s", (int)size - 1, e->d_name);
      found = 0;
      break;
    }
  }
  closedir(d);
  return found;
}

/* One "MAC NAME ADDRESS/PREFIX GATEWAY|- MTU" line: find the NIC (the driver may still be probing), name it,
 * address it, bring it up; a gateway becomes the default route. Errors go to the console, the process
 * still starts (as a container starts even when a network is odd). */
static void setup_nic(int fd, const char *line) {
  char mac[64], want[IFNAMSIZ + 1], cidr[64], gw[64];
  int mtu = 0;
  if (sscanf(line, "%63s %16s %63s %63s %d", mac, want, cidr, gw, &mtu) < 4) {
    logmsg("bad nic spec: %s", line);
    return;
  }
  char name[IFNAMSIZ + 1];
  int i = 0;
  while (iface_by_mac(mac, name, sizeof name) != 0) {
    if (++i > 400) {
      logmsg("no network interface with MAC %s", mac);
      return;
    }
    msleep(5);
  }
  struct ifreq ifr;
  if (strcmp(name, want) != 0) {
    if_flags(fd, name, 0, IFF_UP);
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%.*s", IFNAMSIZ - 1, name);
    snprintf(ifr.ifr_newname, IFNAMSIZ, "%.*s", IFNAMSIZ - 1, want);
    if (ioctl(fd, SIOCSIFNAME, &ifr) == 0) snprintf(name, sizeof name, "%.*s", IFNAMSIZ - 1, want);
    else logmsg("renaming %s to %s: %s", name, want, strerror(errno));
  }
  char *slash = strchr(cidr, '/');
  int prefix = slash ? atoi(slash + 1) : 24;
  if (slash) *slash = 0;
  struct in_addr addr;
  if (inet_pton(AF_INET, cidr, &addr) != 1 || prefix < 0 || prefix > 32) {
    logmsg("bad address %s", cidr);
    return;
  }
  if (mtu > 0) {
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%.*s", IFNAMSIZ - 1, name);
    ifr.ifr_mtu = mtu;
    ioctl(fd, SIOCSIFMTU, &ifr);
  }
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "%.*s", IFNAMSIZ - 1, name);
  set_sockaddr(&ifr.ifr_addr, addr.s_addr);
  if (ioctl(fd, SIOCSIFADDR, &ifr) != 0) logmsg("address of %s: %s", name, strerror(errno));
  in_addr_t mask = prefix == 0 ? 0 : htonl(0xffffffffu << (32 - prefix));
  set_sockaddr(&ifr.ifr_netmask, mask);
  if (ioctl(fd, SIOCSIFNETMASK, &ifr) != 0) logmsg("netmask of %s: %s", name, strerror(errno));
  if (if_flags(fd, name, IFF_UP, 0) != 0) logmsg("bringing %s up: %s", name, strerror(errno));
  struct in_addr gwa;
  if (strcmp(gw, "-") != 0 && inet_pton(AF_INET, gw, &gwa) == 1) {
    struct rtentry rt;
    memset(&rt, 0, sizeof rt);
    set_sockaddr(&rt.rt_dst, INADDR_ANY);
    set_sockaddr(&rt.rt_genmask, INADDR_ANY);
    set_sockaddr(&rt.rt_gateway, gwa.s_addr);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    rt.rt_dev = name;
    if (ioctl(fd, SIOCADDRT, &rt) != 0 && errno != EEXIST) logmsg("default route via %s: %s", gw, strerror(errno));
  }
}

/* Put `content` at `path` as hull's file: written under /dev/.hull (a tmpfs, writable with --read-only too)
 * and bind-mounted over the image's file, as a container gets it; a missing target is created when it can be. */
static void place_file(const char *path, const char *name, const char *content) {
  char src[128];
  mkdir("/dev/.hull", 0755);
  snprintf(src, sizeof src, "/dev/.hull/%s", name);
  int fd = open(src, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  write_all(fd, content, strlen(content));
  close(fd);
  struct stat st;
  if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (S_ISLNK(st.st_mode)) unlink(path); /* e.g. resolv.conf -> ../run/systemd/...: replaced, as docker does */
    int t = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (t < 0) return; /* read-only root without the file: nothing to mount over */
    close(t);
  }
  if (mount(src, path, NULL, MS_BIND, NULL) != 0) logmsg("bind-mounting %s: %s", path, strerror(errno));
}

static void setup_network(struct spec *s) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  for (int i = 0; i < s->nicc; i++) setup_nic(fd, s->nics[i]);
  close(fd);
  mkdir("/etc", 0755);
  if (s->hosts) place_file("/etc/hosts", "hosts", s->hosts);
  if (s->resolv) place_file("/etc/resolv.conf", "resolv.conf", s->resolv);
}

/* user[:group] by name or number, from the guest's /etc/passwd and /etc/group (docker's rules) */
static int resolve_user(const char *spec, uid_t *uid, gid_t *gid, const char **home) {
  char u[128], g[128] = "";
  snprintf(u, sizeof u, "%s", spec);
  char *colon = strchr(u, ':');
  if (colon) {
    *colon = 0;
    snprintf(g, sizeof g, "%s", colon + 1);
  }
  *uid = 0;
  *gid = 0;
  *home = "/";
  if (u[0]) {
    char *e;
    long n = strtol(u, &e, 10);
    struct passwd *pw = *e ? getpwnam(u) : getpwuid((uid_t)n);
    if (pw) {
      *uid = pw->pw_uid;
      *gid = pw->pw_gid;
      *home = pw->pw_dir;
    } else if (!*e) {
      *uid = (uid_t)n;
    } else {
      return -1;
    }
  }
  if (g[0]) {
    char *e;
    long n = strtol(g, &e, 10);
    if (!*e) *gid = (gid_t)n;
    else {
      struct group *gr = getgrnam(g);
      if (!gr) return -1;
      *gid = gr->gr_gid;
    }
  }
  return 0;
}

static struct session *session_get(uint32_t id) {
  for (int i = 0; i < MAX_SESSIONS; i++)
    if (sessions[i].used && sessions[i].id == id) return &sessions[i];
  return NULL;
}

static void set_nonblock(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void start_process(uint32_t id, struct spec *s) {
  if (s->argc == 0) {
    send_status('F', id, 127, "no command given");
    return;
  }
  struct session *ss = NULL;
  for (int i = 0; i < MAX_SESSIONS; i++)
    if (!sessions[i].used) {
      ss = &sessions[i];
      break;
    }
  if (!ss) {
    send_status('F', id, 126, "too many processes in this VM's agent");
    return;
  }
  uid_t uid;
  gid_t gid;
  const char *home;
  if (resolve_user(s->user ? s->user : "", &uid, &gid, &home) != 0) {
    char m[256];
    snprintf(m, sizeof m, "unable to find user %s: no matching entries in passwd file", s->user);
    send_status('F', id, 126, m);
    return;
  }
  int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1}, ptm = -1;
  char ptsname_buf[64];
  if (s->tty) {
    ptm = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (ptm < 0 || grantpt(ptm) || unlockpt(ptm) || ptsname_r(ptm, ptsname_buf, sizeof ptsname_buf)) {
      send_status('F', id, 126, "cannot allocate a pseudo-terminal");
      if (ptm >= 0) close(ptm);
      return;
    }
    if (s->rows && s->cols) {
      struct winsize ws = {s->rows, s->cols, 0, 0};
      ioctl(ptm, TIOCSWINSZ, &ws);
    }
  } else {
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
      send_status('F', id, 126, "cannot create pipes");
      return;
    }
    if (s->stdin_open && pipe2(in, O_CLOEXEC)) {
      send_status('F', id, 126, "cannot create pipes");
      return;
    }
  }
  int report[2];
  if (pipe2(report, O_CLOEXEC)) {
    send_status('F', id, 126, "cannot create pipes");
    return;
  }
  pid_t pid = fork();
  if (pid == 0) {
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (int i = 1; i < 32; i++) signal(i, SIG_DFL);
    setsid();
    if (s->tty) {
      int pts = open(ptsname_buf, O_RDWR);
      if (pts < 0) _exit(126);
      ioctl(pts, TIOCSCTTY, 0);
      dup2(pts, 0);
      dup2(pts, 1);
      dup2(pts, 2);
      if (pts > 2) close(pts);
    } else {
      int null = open("/dev/null", O_RDWR);
      dup2(in[0] >= 0 ? in[0] : null, 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      if (null > 2) close(null);
    }
    if (s->hostname && s->hostname[0] && id == 0) sethostname(s->hostname, strlen(s->hostname));
    int code = 126;
    const char *what = "chdir";
    if (s->cwd && s->cwd[0]) {
      mkdir(s->cwd, 0755); /* docker creates a missing working directory */
      if (chdir(s->cwd) != 0) goto fail;
    }
    what = "setgroups";
    if (setgroups(0, NULL) && uid != 0) goto fail;
    what = "setgid";
    if (setgid(gid)) goto fail;
    what = "setuid";
    if (setuid(uid)) goto fail;
    /* execvp looks up PATH in the current environment: make it the process's */
    environ = s->envp;
    int has_home = 0;
    for (int i = 0; i < s->envc; i++)
      if (!strncmp(s->envp[i], "HOME=", 5)) has_home = 1;
    if (!has_home) setenv("HOME", home, 1);
    if (s->tty && !getenv("TERM")) setenv("TERM", "xterm", 1);
    what = s->argv[0];
    execvp(s->argv[0], s->argv);
    code = (errno == ENOENT || errno == ENOTDIR) ? 127 : 126;
  fail:;
    char msg[400];
    snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
    int32_t c = code;
    write(report[1], &c, 4);
    write(report[1], msg, strlen(msg));
    _exit(code);
  }
  close(report[1]);
  if (in[0] >= 0) close(in[0]);
  if (out[1] >= 0) close(out[1]);
  if (err[1] >= 0) close(err[1]);
  if (pid < 0) {
    send_status('F', id, 126, "fork failed");
    close(report[0]);
    return;
  }
  /* wait for the exec (the report pipe closes on success) or its failure */
  char rbuf[404];
  ssize_t rn, total = 0;
  while ((rn = read(report[0], rbuf + total, sizeof rbuf - 1 - (size_t)total)) > 0) total += rn;
  close(report[0]);
  if (total >= 4) {
    int32_t c;
    memcpy(&c, rbuf, 4);
    rbuf[total] = 0;
    waitpid(pid, NULL, 0);
    send_status('F', id, c, rbuf + 4);
    if (ptm >= 0) close(ptm);
    if (out[0] >= 0) close(out[0]);
    if (err[0] >= 0) close(err[0]);
    if (in[1] >= 0) close(in[1]);
    return;
  }
  memset(ss, 0, sizeof *ss);
  ss->used = 1;
  ss->id = id;
  ss->pid = pid;
  ss->tty = s->tty;
  ss->out = s->tty ? ptm : out[0];
  ss->err = s->tty ? -1 : err[0];
  ss->in = s->tty ? (s->stdin_open ? dup(ptm) : -1) : in[1];
  set_nonblock(ss->out);
  if (ss->err >= 0) set_nonblock(ss->err);
  uint32_t p = (uint32_t)pid;
  send_frame('P', id, &p, 4);
}

/* forward what a process wrote; returns 0 at end of file */
static int pump(struct session *s, int *fd, char type) {
  static char buf[16384];
  for (int rounds = 0; rounds < 4; rounds++) {
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n > 0) {
      send_frame(type, s->id, buf, (uint32_t)n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 1;
    /* EOF, or EIO from a pty master whose last slave closed */
    close(*fd);
    *fd = -1;
    return 0;
  }
  return 1;
}

/* the guest kernel's OOM kills since boot (/proc/vmstat oom_kill); -1 when /proc cannot tell */
static long oom_kills(void) {
  static char buf[32768];
  size_t len = 0;
  ssize_t n;
  int fd = open("/proc/vmstat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)n;
  close(fd);
  buf[len] = 0;
  char *p = strstr(buf, "\noom_kill ");
  return p ? strtol(p + 10, NULL, 10) : -1;
}

static void finish_session(struct session *s) {
  /* the process is gone: drain what is already in its pipes (children may keep them open) */
  if (s->out >= 0) pump(s, &s->out, 'O');
  if (s->err >= 0) pump(s, &s->err, 'E');
  if (s->out >= 0) close(s->out);
  if (s->err >= 0) close(s->err);
  if (s->in >= 0) close(s->in);
  int32_t st[2] = {s->status, 0};
  uint32_t len = 4;
  if (s->id == 0) {
    sync(); /* the main process ends the VM: its writes are on disk before the host hears it */
    long oom = oom_kills();
    if (oom >= 0) {
      st[1] = (int32_t)oom;
      len = 8;
    }
  }
  send_frame('Z', s->id, st, len);
  s->used = 0;
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (int i = 0; i < MAX_SESSIONS; i++) {
      struct session *s = &sessions[i];
      if (s->used && s->pid == pid) {
        s->exited = 1;
        s->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
    }
  }
}

static void on_sigchld(int sig) {
  (void)sig;
  int e = errno;
  write(sigpipe_fds[1], "c", 1);
  errno = e;
}

/* ---- host messages ---- */

static unsigned char inbuf[9 + MAX_PAYLOAD];
static size_t inlen;

static void handle(char type, uint32_t id, unsigned char *p, uint32_t len) {
  struct session *s;
  switch (type) {
  case 'S':
  case 'X': {
    static struct spec sp;
    static char copy[MAX_PAYLOAD + 1];
    memcpy(copy, p, len);
    copy[len] = 0;
    parse_spec(copy, len, &sp);
    if (type == 'S') {
      char err[512];
      int ok = 1;
      if (sp.mountc > 0) load_volume_modules();
      for (int i = 0; ok && i < sp.mountc; i++) ok = setup_mount(sp.mounts[i], err, sizeof err) == 0;
      setup_network(&sp);
      for (int i = 0; ok && i < sp.sysctlc; i++) ok = set_sysctl(sp.sysctls[i], err, sizeof err) == 0;
      finish_root();
      if (!ok) {
        logmsg("%s", err);
        send_status('F', id, 125, err);
        break;
      }
    }
    start_process(id, &sp);
    break;
  }
  case 'I':
    s = session_get(id);
    if (!s || s->in < 0) break;
    if (len == 0) {
      if (s->tty) {
        /* end of input on a terminal: ^D at the start of a line */
        write_all(s->in, "\004", 1);
      }
      close(s->in);
      s->in = -1;
    } else {
      write_all(s->in, p, len);
    }
    break;
  case 'K': {
    uint32_t sig;
    if (len < 4) break;
    memcpy(&sig, p, 4);
    if (id == ALL_SESSIONS) {
      kill(-1, (int)sig); /* from PID 1: every process but the agent */
    } else if ((s = session_get(id)) && !s->exited) {
      kill(s->pid, (int)sig);
    }
    break;
  }
  case 'W':
    s = session_get(id);
    if (s && s->tty && len >= 4) {
      struct winsize ws = {0};
      memcpy(&ws.ws_row, p, 2);
      memcpy(&ws.ws_col, p + 2, 2);
      ioctl(s->out, TIOCSWINSZ, &ws);
    }
    break;
  case 'N': {
    /* user processes: every /proc/<pid> but the agent (1), kthreadd (2) and its children */
    uint32_t count = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      long pid = atol(e->d_name);
      if (pid <= 2) continue;
      char path[64], st[512];
      snprintf(path, sizeof path, "/proc/%ld/stat", pid);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ssize_t n = read(fd, st, sizeof st - 1);
      close(fd);
      if (n <= 0) continue;
      st[n] = 0;
      char *rp = strrchr(st, ')');
      long ppid = 0;
      if (rp) sscanf(rp + 2, "%*c %ld", &ppid);
      if (ppid != 2) count++;
    }
    if (d) closedir(d);
    send_frame('N', id, &count, 4);
    break;
  }
  case 'Q':
    kill(-1, SIGKILL);
    sync();
    reboot(RB_POWER_OFF);
    break;
  }
}

static void read_channel(void) {
  ssize_t n = read(chan, inbuf + inlen, sizeof inbuf - inlen);
  if (n <= 0) {
    if (n == 0) msleep(20); /* the host side is not connected: nothing to read yet */
    return;
  }
  inlen += (size_t)n;
  for (;;) {
    if (inlen < 9) break;
    uint32_t id, len;
    memcpy(&id, inbuf + 1, 4);
    memcpy(&len, inbuf + 5, 4);
    if (len > MAX_PAYLOAD) {
      logmsg("bad frame from the host (length %u): resetting the channel", len);
      inlen = 0;
      break;
    }
    if (inlen < 9 + len) break;
    handle((char)inbuf[0], id, inbuf + 9, len);
    memmove(inbuf, inbuf + 9 + len, inlen - 9 - len);
    inlen -= 9 + len;
  }
}

/* ---- template clones ---- */

/* linux/random.h's ioctls (musl has no kernel headers) */
#define HULL_RNDADDENTROPY _IOW('R', 0x03, int[2])
#define HULL_RNDRESEEDCRNG _IO('R', 0x07)

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 0;
}

/* a clone must not share its template's RNG state: mix in the host's bytes (credited) and reseed the CRNG
 * at once, so every later read (getrandom, /dev/urandom, the lazily made boot_id) depends on them */
static void reseed(const char *hex) {
  struct {
    int entropy_count;
    int buf_size;
    unsigned char buf[256];
  } info;
  size_t n = strlen(hex) / 2;
  if (n > sizeof info.buf) n = sizeof info.buf;
  for (size_t i = 0; i < n; i++) info.buf[i] = (unsigned char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
  info.buf_size = (int)n;
  info.entropy_count = (int)n * 8;
  int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    logmsg("opening /dev/urandom to reseed: %s", strerror(errno));
    return;
  }
  if (ioctl(fd, HULL_RNDADDENTROPY, &info) != 0) logmsg("adding the host's entropy: %s", strerror(errno));
  if (ioctl(fd, HULL_RNDRESEEDCRNG) != 0) logmsg("reseeding the CRNG: %s", strerror(errno));
  close(fd);
}

/* "OLD NEW": the template's NIC with MAC OLD takes the instance's MAC NEW (virtio-net tells the device too) */
static void remac(const char *line) {
  char old[32], want[32], name[64];
  unsigned char mac[6];
  if (sscanf(line, "%31s %31s", old, want) != 2 ||
      sscanf(want, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) != 6) {
    logmsg("bad MAC change %s", line);
    return;
  }
  int i = 0;
  while (iface_by_mac(old, name, sizeof name) != 0) {
    if (++i > 400) {
      logmsg("no interface with MAC %s to give %s", old, want);
      return;
    }
    msleep(5);
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "%.*s", IFNAMSIZ - 1, name);
  ifr.ifr_hwaddr.sa_family = 1; /* ARPHRD_ETHER */
  memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
  if (ioctl(fd, SIOCSIFHWADDR, &ifr) != 0) logmsg("setting the MAC of %s to %s: %s", name, want, strerror(errno));
  close(fd);
}

/* 'A' from the host after a restore: "entropy" (hex), "time" ("SEC NSEC", the host's CLOCK_REALTIME), "root"
 * (the disk to mount), "ro", "mac" ("OLD NEW" per NIC). */
static void attach_instance(char *p, uint32_t len) {
  char *end = p + len;
  const char *macs[16];
  int macc = 0;
  while (p < end) {
    char *k = p;
    p += strnlen(p, (size_t)(end - p)) + 1;
    if (p >= end) break;
    char *v = p;
    p += strnlen(p, (size_t)(end - p)) + 1;
    if (!strcmp(k, "entropy")) reseed(v);
    else if (!strcmp(k, "time")) {
      long long sec = 0;
      long nsec = 0;
      if (sscanf(v, "%lld %ld", &sec, &nsec) == 2) {
        struct timespec ts = {(time_t)sec, nsec};
        if (clock_settime(CLOCK_REALTIME, &ts) != 0) logmsg("setting the clock: %s", strerror(errno));
      }
    } else if (!strcmp(k, "root")) snprintf(attach_root, sizeof attach_root, "%s", v);
    else if (!strcmp(k, "ro")) attach_ro = 1;
    else if (!strcmp(k, "mac") && macc < 16) macs[macc++] = v;
  }
  for (int i = 0; i < deferred_count; i++) {
    int fd = open(deferred_modules[i], O_RDONLY | O_CLOEXEC);
    if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST))
      logmsg("loading %s: %s", deferred_modules[i], strerror(errno));
    if (fd >= 0) close(fd);
  }
  for (int i = 0; i < macc; i++) remac(macs[i]);
}

/* template mode: say 'T' (the host saves the VM now) and wait for the instance ('A'), as the restored clone */
static void wait_attach(void) {
  /* give back what boot left behind (the page cache, fragmented free memory), so that free page reporting
   * returns it to the host and the saved template holds only the pages in use */
  static const char *const knobs[][2] = {{"/proc/sys/vm/drop_caches", "3"}, {"/proc/sys/vm/compact_memory", "1"}};
  for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
    int fd = open(knobs[i][0], O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      if (write(fd, knobs[i][1], 1) != 1) logmsg("writing %s: %s", knobs[i][0], strerror(errno));
      close(fd);
    }
  }
  struct utsname u;
  uname(&u);
  send_frame('T', 0, u.release, (uint32_t)strlen(u.release));
  static unsigned char buf[9 + MAX_PAYLOAD + 1];
  size_t have = 0;
  for (;;) {
    ssize_t n = read(chan, buf + have, sizeof buf - 1 - have);
    if (n <= 0) {
      if (n < 0 && errno != EINTR && errno != EAGAIN) die("reading the agent channel");
      msleep(n == 0 ? 20 : 1);
      continue;
    }
    have += (size_t)n;
    while (have >= 9) {
      uint32_t len;
      memcpy(&len, buf + 5, 4);
      if (len > MAX_PAYLOAD) {
        have = 0;
        break;
      }
      if (have < 9 + len) break;
      if (buf[0] == 'A') {
        buf[9 + len] = 0;
        attach_instance((char *)buf + 9, len);
        return;
      }
      memmove(buf, buf + 9 + len, have - 9 - len);
      have -= 9 + len;
    }
  }
}

int main(void) {
  if (getpid() != 1) {
    fprintf(stderr, "hull-agent: runs as PID 1 of a hull VM\n");
    return 2;
  }
  mkdir("/dev", 0755);
  mkdir("/proc", 0555);
  mkdir("/sys", 0555);
  mount("devtmpfs", "/dev", "devtmpfs", 0, "mode=0755");
  mount("proc", "/proc", "proc", 0, "");
  mount("sysfs", "/sys", "sysfs", 0, "");
  int con = open("/dev/console", O_RDWR | O_NOCTTY);
  if (con >= 0) {
    dup2(con, 1);
    dup2(con, 2);
    if (con > 2) close(con);
  }
  int fd = open("/proc/cmdline", O_RDONLY);
  if (fd >= 0) {
    ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
    cmdline[n > 0 ? n : 0] = 0;
    close(fd);
  }
  template_mode = cmdline_arg("hull.template") != NULL;
  load_modules("/hull/modules");
  open_volume_modules();
  open_channel();
  if (template_mode) wait_attach();
  /* the initramfs's mounts go: the root disk gets its own */
  umount2("/proc", MNT_DETACH);
  umount2("/sys", MNT_DETACH);
  mount_root();

  if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK)) die("pipe");
  struct sigaction sa = {0};
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  /* PID 1 gets no default signal actions; stray terminal signals must not matter */
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);

  /* loopback, as every container has it */
  int lo = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (lo >= 0) {
    if_flags(lo, "lo", IFF_UP, 0);
    close(lo);
  }

  struct utsname u;
  uname(&u);
  send_frame('R', 0, u.release, (uint32_t)strlen(u.release));

  for (;;) {
    struct pollfd pfds[2 + 2 * MAX_SESSIONS];
    struct session *owner[2 + 2 * MAX_SESSIONS];
    int which[2 + 2 * MAX_SESSIONS];
    int n = 0;
    pfds[n] = (struct pollfd){chan, POLLIN, 0};
    owner[n++] = NULL;
    pfds[n] = (struct pollfd){sigpipe_fds[0], POLLIN, 0};
    owner[n++] = NULL;
    for (int i = 0; i < MAX_SESSIONS; i++) {
      struct session *s = &sessions[i];
      if (!s->used) continue;
      if (s->out >= 0) {
        pfds[n] = (struct pollfd){s->out, POLLIN, 0};
        owner[n] = s;
        which[n++] = 1;
      }
      if (s->err >= 0) {
        pfds[n] = (struct pollfd){s->err, POLLIN, 0};
        owner[n] = s;
        which[n++] = 2;
      }
    }
    /* a finished process whose pipes a child still holds: check back now and then */
    int timeout = -1;
    for (int i = 0; i < MAX_SESSIONS; i++)
      if (sessions[i].used && sessions[i].exited) timeout = 50;
    int r = poll(pfds, (nfds_t)n, timeout);
    if (r < 0 && errno != EINTR) die("poll");
    if (r > 0) {
      if (pfds[0].revents & (POLLIN | POLLHUP | POLLERR)) read_channel();
      if (pfds[1].revents & POLLIN) {
        char b[64];
        while (read(sigpipe_fds[0], b, sizeof b) > 0) {}
      }
      for (int i = 2; i < n; i++) {
        if (!pfds[i].revents) continue;
        struct session *s = owner[i];
        if (!s->used) continue;
        if (which[i] == 1 && s->out >= 0) pump(s, &s->out, 'O');
        if (which[i] == 2 && s->err >= 0) pump(s, &s->err, 'E');
      }
    }
    reap();
    for (int i = 0; i < MAX_SESSIONS; i++) {
      struct session *s = &sessions[i];
      /* done once the process has exited; its output ends when the pipes close or a moment later */
      if (s->used && s->exited) finish_session(s);
    }
  }
}
