// The kernel oracle's fast injection path, in Perl (perl-base is Essential on Debian/Ubuntu): one
// process, pinned to one CPU, that holds a packet socket in every namespace of a run (entered
// with setns(2) through /run/netns/<name>) and runs the whole per-packet cycle itself — inject,
// wait until the kernel is done, collect the frames, read the verdict evidence — for a batch of
// packets per round trip with Node. docs/kernel-oracle.md ("The fast path") says why the cycle is
// exact; in short:
//   - Every veth hop is a netif_rx() onto the backlog queue of the CPU that transmits, processed
//     in order by that CPU's NET_RX softirq (inline on return from send(), or by ksoftirqd under
//     load). The hub is pinned to one CPU, so every hop of every packet lands in one FIFO queue.
//   - A fence is a frame of an unused ethertype sent on a veth pair of its own (nlfa -> nlfb, in
//     the router namespace, no addresses: no netfilter, no protocol handler) and captured on nlfb.
//     When fence r comes back, every skb that was queued before it has been processed (and the
//     skbs those queued are now behind fence r+1).
//   - Every hop of the VPC path is next to a captured interface (an instance's eth0 in or out, the
//     internet's igw in); the router's own links are not, so a packet still moving shows capture
//     activity at least every second fence round. The hub sends fences until MIN_ROUNDS rounds are
//     done and the last QUIET_ROUNDS brought no activity: the packet has no skb left in the kernel.
//   - Only then is the evidence read (xt_recent lists, flushed; conntrack statistics) and the next
//     packet injected: packets never overlap, so attribution is the one-at-a-time mode's, without
//     its quiet-time sleeps and without a Node round trip per packet.
//
// Arguments: hub SETNS_NR MIN_ROUNDS QUIET_ROUNDS SPEC...
//   sock:ID:NETNS:IFNAME:cap   packet socket (ETH_P_ALL) for injection and capture
//   act:NETNS:IFNAME           packet socket watched for activity only (a security-group
//                              namespace's link: frames counted, never results)
//   fence:NETNS:TXIF:RXIF      the fence link
//   stat:ID:PID:SOCK           /proc/PID/net of a namespace: its xt_recent nl_* lists, and for an
//                              instance (SOCK = the id of the socket on its only link; '-' for
//                              none) conntrack statistics and /proc/net/snmp — read only after a
//                              packet that put a frame on that link (nothing else changes them)
//   eip:HEX8                   an Elastic IP: a frame captured at `inet` addressed to it stops the
//                              batch after its packet (Node sends it back in through the IGW)
//   inet:ID                    the socket of the internet edge
// Protocol (binary, records as the agent's: 1 byte command, 1 byte arg, u32 BE length, payload):
//   in  'B' 0 (u8 sock, u32 BE len, frame)*   a batch; per packet the hub replies
//   out 'F' sock (u8 pkttype, frame)          each frame received on a capture socket, then
//   out 'D' errno (u16 late, u16 rounds, text) the packet is done: send errno, frames that came
//                                              before its injection (not attributed), fence
//                                              rounds, and the evidence text (`#ns ID` sections
//                                              in the agent's 'S' format)
//   out 'Z' 0 u32 n                            end of batch: n packets processed (fewer than the
//                                              batch when a hairpin stopped it)
//   out 'R' 0 ''                               ready;   out 'E' 0 text: fatal error, exit 1
export const HUB_SCRIPT = String.raw`
use strict;
use warnings;
$| = 1;
my $mode = shift @ARGV // '';
sub out { my ($c, $a, $p) = @_; $p = '' unless defined $p; my $r = pack('a C N', $c, $a, length $p) . $p;
  my $off = 0; while ($off < length $r) { my $w = syswrite(STDOUT, $r, length($r) - $off, $off); exit 0 unless defined $w; $off += $w; } }
sub fail { out('E', 0, $_[0]); exit 1; }
fail("unknown mode '$mode'") unless $mode eq 'hub';
my ($SETNS, $MIN_ROUNDS, $QUIET_ROUNDS) = (shift @ARGV, shift @ARGV, shift @ARGV);
my (%sock, @cap, @act, %eip, @stats);
my ($ftx, $frx, $inet);
sub enter { my ($ns) = @_;
  open(my $f, '<', "/run/netns/$ns") or fail("open /run/netns/$ns: $!");
  syscall($SETNS + 0, fileno($f), 0x40000000) == 0 or fail("setns $ns: $!");
  close $f; }
sub ifindex { my ($s, $ifn) = @_;
  my $ifr = pack('a16 x24', $ifn);
  ioctl($s, 0x8933, $ifr) or fail("SIOCGIFINDEX $ifn: $!");
  return unpack('x16 i', $ifr); }
sub packet_socket { my ($ifn, $proto) = @_;
  my $native = unpack('S', pack('n', $proto));
  socket(my $s, 17, 3, $native) or fail("AF_PACKET socket: $!");
  my $idx = ifindex($s, $ifn);
  bind($s, pack('S n i S C C a8', 17, $proto, $idx, 0, 0, 0, '')) or fail("bind $ifn: $!");
  setsockopt($s, 1, 8, pack('i', 4194304));
  return $s; }
my $FENCE_TYPE = 0x88b5;
for my $a (@ARGV) {
  if ($a =~ /^sock:(\d+):([A-Za-z0-9_.-]+):([A-Za-z0-9_.-]{1,15}):cap$/) {
    enter($2); $sock{$1} = packet_socket($3, 0x0003); push @cap, $1;
  } elsif ($a =~ /^act:([A-Za-z0-9_.-]+):([A-Za-z0-9_.-]{1,15})$/) {
    enter($1); push @act, packet_socket($2, 0x0003);
  } elsif ($a =~ /^fence:([A-Za-z0-9_.-]+):([A-Za-z0-9_.-]{1,15}):([A-Za-z0-9_.-]{1,15})$/) {
    enter($1); $ftx = packet_socket($2, 0); $frx = packet_socket($3, $FENCE_TYPE);
  } elsif ($a =~ /^stat:(\d+):(\d+):(\d+|-)$/) {
    my ($id, $pid, $counters) = ($1, $2, $3 ne '-');
    my $ns = { id => $id, lists => [], sock => $3 };
    if ($counters && open(my $f, '<', "/proc/$pid/net/stat/nf_conntrack")) {
      my $c = ''; 1 while sysread($f, $c, 65536, length $c);
      my @head = split ' ', (split /\n/, $c)[0] // '';
      my %col; @col{@head} = (0 .. $#head);
      $ns->{stat} = $f; $ns->{cols} = [map { $col{$_} // -1 } qw(insert_failed drop early_drop)];
    }
    if ($counters && open(my $f, '<', "/proc/$pid/net/snmp")) {
      # The value columns, found once in the header lines (a kernel's MIB layout does not change).
      my $c = slurp($f);
      my ($ip) = $c =~ /^Ip: ([A-Za-z].*)$/m; my ($icmp) = $c =~ /^Icmp: ([A-Za-z].*)$/m;
      my @ip = split ' ', $ip // ''; my @icmp = split ' ', $icmp // '';
      my %at; $at{"Ip:$ip[$_]"} = $_ for 0 .. $#ip; $at{"Icmp:$icmp[$_]"} = $_ for 0 .. $#icmp;
      $ns->{snmp} = $f;
      $ns->{snmpcols} = [map { $at{$_} // -1 } qw(Ip:InHdrErrors Icmp:OutRateLimitGlobal Icmp:OutRateLimitHost)];
    }
    if (opendir(my $d, "/proc/$pid/net/xt_recent")) {
      for my $n (sort grep { /^nl_/ } readdir $d) {
        open(my $f, '+<', "/proc/$pid/net/xt_recent/$n") or fail("open xt_recent $n: $!");
        push @{$ns->{lists}}, [$n, $f];
      }
      closedir $d;
    }
    push @stats, $ns;
  } elsif ($a =~ /^eip:([0-9a-f]{8})$/) { $eip{pack('H8', $1)} = 1; }
  elsif ($a =~ /^inet:(\d+)$/) { $inet = $1; }
  else { fail("bad hub argument '$a'"); }
}
fail('no fence link') unless $ftx && $frx;
my $capvec = ''; vec($capvec, fileno($sock{$_}), 1) = 1 for @cap;
vec($capvec, fileno($_), 1) = 1 for @act;
my $frxvec = ''; vec($frxvec, fileno($frx), 1) = 1;
my $fence_hdr = pack('H12 H12 n', 'ffffffffffff', '026e6c01fffa', $FENCE_TYPE);
my $fseq = 0;
my ($obuf, $late, $stop) = ('', 0, 0);
# Capture sockets that received or sent a frame since the current packet began: a namespace's
# counters can only move when a frame crosses its link, so only those namespaces are read.
my %touched;
# Receives everything queued on the capture sockets; returns how many frames (activity).
# $emit: frames are results of the current packet (else they are late: counted, not attributed).
sub drain { my ($emit) = @_;
  my $act = 0;
  for (my $k = 0; $k < 100000; $k++) {
    my $n = select(my $r = $capvec, undef, undef, 0);
    last if !defined $n || $n <= 0;
    for my $id (@cap) {
      my $s = $sock{$id};
      next unless vec($r, fileno($s), 1);
      while (1) {
        my $buf = '';
        my $from = recv($s, $buf, 65600, 0x40);
        last unless defined $from;
        $act++;
        $touched{$id} = 1;
        my $pt = length($from) >= 11 ? unpack('x10 C', $from) : 0;
        next if $pt == 4;
        if (!$emit) { $late++ if length($buf) >= 14 && substr($buf, 12, 2) eq "\x08\x00"; next; }
        $obuf .= pack('a C N C', 'F', $id, length($buf) + 1, $pt) . $buf;
        $stop = 1 if defined $inet && $id == $inet && length($buf) >= 34 && substr($buf, 12, 2) eq "\x08\x00" && $eip{substr($buf, 30, 4)};
      }
    }
    for my $s (@act) {
      next unless vec($r, fileno($s), 1);
      while (1) { my $buf = ''; my $from = recv($s, $buf, 65600, 0x40); last unless defined $from; $act++; }
    }
  }
  return $act; }
sub fence {
  $fseq = ($fseq + 1) % 4294967296;
  my $f = $fence_hdr . pack('N', $fseq) . ("\0" x 42);
  defined(send($ftx, $f, 0)) or fail("fence send: $!");
  for (my $w = 0; $w < 100; $w++) {
    my $n = select(my $r = $frxvec, undef, undef, 0.1);
    next if !defined $n || $n <= 0;
    while (1) {
      my $buf = '';
      my $from = recv($frx, $buf, 2048, 0x40);
      last unless defined $from;
      return if length($buf) >= 18 && unpack('x14 N', $buf) == $fseq;
    }
  }
  fail("fence $fseq did not come back within 10 s"); }
sub slurp { my ($f) = @_; sysseek($f, 0, 0); my $c = ''; 1 while sysread($f, $c, 65536, length $c); return $c; }
# TTL expiries (Ip InHdrErrors) and ICMP errors refused by the rate limits (issue 15 K2): only the
# two value lines, split by the columns found at start (a whole-file parse cost ~3x as much).
sub snmp { my ($c, $cols) = @_;
  my ($ip) = $c =~ /^Ip: (\d.*)$/m; my ($icmp) = $c =~ /^Icmp: (\d.*)$/m;
  my @ip = split ' ', $ip // ''; my @icmp = split ' ', $icmp // '';
  my @v = ($cols->[0] >= 0 ? $ip[$cols->[0]] : 0, map { $_ >= 0 ? $icmp[$_] : 0 } @{$cols}[1, 2]);
  return sprintf("#snmp\n%d %d %d\n", map { $_ // 0 } @v); }
sub evidence {
  my $t = '';
  for my $ns (@stats) {
    $t .= "#ns $ns->{id}\n";
    my $moved = $ns->{sock} ne '-' && $touched{$ns->{sock}};
    if ($ns->{stat} && $moved) {
      my @lines = split /\n/, slurp($ns->{stat});
      shift @lines;
      my @sum = (0, 0, 0);
      for my $l (@lines) { my @v = split ' ', $l; for my $k (0 .. 2) { my $c = $ns->{cols}[$k]; $sum[$k] += hex($v[$c] // '0') if $c >= 0; } }
      $t .= sprintf("#stat\ninsert_failed drop early_drop\n%x %x %x\n", @sum);
    }
    $t .= snmp(slurp($ns->{snmp}), $ns->{snmpcols}) if $ns->{snmp} && $moved;
    for my $l (@{$ns->{lists}}) {
      my $c = slurp($l->[1]);
      next unless length $c;
      my $lines = () = $c =~ /\n/g;
      $t .= "#recent $l->[0] $lines\n";
      sysseek($l->[1], 0, 0); syswrite($l->[1], "/\n");
    }
  }
  return $t; }
sub packet { my ($id, $frame) = @_;
  my $s = $sock{$id} or fail("no socket $id");
  $late = 0;
  %touched = ();
  drain(0);
  my $ok = send($s, $frame, 0);
  my $errno = defined $ok ? 0 : (($! + 0) & 255) || 1;
  my ($rounds, $quiet) = (0, 0);
  while ($rounds < 100000) {
    fence(); $rounds++;
    my $act = drain(1);
    $quiet = $act ? 0 : $quiet + 1;
    last if $rounds >= $MIN_ROUNDS && $quiet >= $QUIET_ROUNDS;
  }
  $obuf .= pack('a C N', 'D', $errno, 0);
  my $p = pack('n n', $late > 65535 ? 65535 : $late, $rounds > 65535 ? 65535 : $rounds) . evidence();
  substr($obuf, length($obuf) - 4, 4) = pack('N', length $p);
  $obuf .= $p;
  syswrite_all(); }
sub syswrite_all { my $off = 0;
  while ($off < length $obuf) { my $w = syswrite(STDOUT, $obuf, length($obuf) - $off, $off); exit 0 unless defined $w; $off += $w; }
  $obuf = ''; }
out('R', 0, '');
my $in = '';
while (1) {
  my $r = sysread(STDIN, $in, 4194304, length $in);
  exit 0 unless $r;
  while (length($in) >= 6) {
    my ($c, $a, $len) = unpack('a C N', $in);
    last if length($in) < 6 + $len;
    my $p = substr($in, 6, $len);
    substr($in, 0, 6 + $len) = '';
    fail("bad command '$c'") unless $c eq 'B';
    my ($off, $n) = (0, 0);
    $stop = 0;
    while ($off + 5 <= length($p) && !$stop) {
      my ($id, $fl) = unpack("x$off C N", $p);
      packet($id, substr($p, $off + 5, $fl));
      $off += 5 + $fl; $n++;
    }
    out('Z', 0, pack('N', $n));
  }
}
`;
