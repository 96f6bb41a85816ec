// The per-namespace helper of the kernel oracle, in Perl (perl-base is Essential on Debian and
// Ubuntu, so it needs no extra runtime). Node cannot open AF_PACKET sockets or write sysctls of
// another network namespace, so one helper runs inside each namespace (`ip netns exec NS perl -e`).
//
// Modes:
//   setup ARG...      one-shot: `sysctl:<path under /proc/sys>=<value>` writes a sysctl
//                     (`?sysctl:` = optional: failure is reported, not fatal),
//                     `rxoff:<ifname>` turns RX checksum offload off (ETHTOOL_SRXCSUM), so that
//                     veth does not mark injected frames CHECKSUM_UNNECESSARY (conntrack would then
//                     skip L4 checksum verification).
//   agent IFNAME|- cap|send SETUP...  long-lived: runs the setup arguments, replies 'R' (payload:
//                     warnings), then on 'O' opens an AF_PACKET socket bound to IFNAME ('-' = none,
//                     stats only). Exits when stdin closes (a killed parent never leaves it behind).
//
// Agent protocol (binary, both directions): record = 1 byte command, 1 byte arg, u32 BE length,
// payload.
//   in  'O' 0 ''       open the socket (the interface is configured by now); replies 'O'.
//   in  'I' 0 frame    send the Ethernet frame on the socket; replies 'A' errno ''.
//   in  'Y' 0 token    drain everything queued on the socket, then reply 'Y' 0 token.
//   in  'S' 0 ''       reply 'S' 0 text: /proc/net/stat/nf_conntrack, then every
//                      /proc/net/xt_recent/nl_* list (each flushed after reading).
//   out 'P' pkttype frame   a frame seen on the interface (pkttype: 0 host .. 4 outgoing).
//   out 'R' 0 warnings ready (setup done).
//   out 'E' 0 text     fatal error, then exit 1.
export const AGENT_SCRIPT = String.raw`
use strict;
use warnings;
$| = 1;
my $mode = shift @ARGV // '';
sub out { my ($c, $a, $p) = @_; $p = '' unless defined $p; my $r = pack('a C N', $c, $a, length $p) . $p;
  my $off = 0; while ($off < length $r) { my $w = syswrite(STDOUT, $r, length($r) - $off, $off); exit 0 unless defined $w; $off += $w; } }
sub fail { out('E', 0, $_[0]); exit 1; }
sub setup {
  my (@args) = @_;
  my (@errs, @warn);
  for my $a (@args) {
    if ($a =~ /^(\??)sysctl:([A-Za-z0-9_.\/-]+)=(-?[0-9]+)$/ && $2 !~ m{(^|/)\.\.?(/|$)}) {
      my ($opt, $path, $val) = ($1, $2, $3);
      my $ok = open(my $fh, '>', "/proc/sys/$path");
      if ($ok) { $ok = print $fh "$val\n"; $ok = close($fh) && $ok; }
      if (!$ok) { my $e = "$path=$val: $!"; if ($opt) { push @warn, $e; } else { push @errs, $e; } }
    } elsif ($a =~ /^rxoff:([A-Za-z0-9_.-]{1,15})$/) {
      my $ifn = $1;
      socket(my $so, 2, 2, 0) or do { push @errs, "socket: $!"; next; };
      my $ev = pack('L L', 0x15, 0);
      my $ifr = pack('a16 P x16', $ifn, $ev);
      ioctl($so, 0x8946, $ifr) or push @errs, "ETHTOOL_SRXCSUM $ifn: $!";
      close $so;
    } else { push @errs, "bad setup argument '$a'"; }
  }
  return (\@errs, \@warn);
}
if ($mode eq 'setup') {
  my ($errs, $warn) = setup(@ARGV);
  print STDOUT "warn $_\n" for @$warn;
  if (@$errs) { print STDERR join("\n", @$errs), "\n"; exit 1; }
  exit 0;
}
fail("unknown mode '$mode'") unless $mode eq 'agent';
my $ifname = shift @ARGV // '-';
my $cap = (shift @ARGV // 'cap') eq 'cap';
my ($errs, $warn) = setup(@ARGV);
fail('setup: ' . join('; ', @$errs)) if @$errs;
my $s;
# Opened on the 'O' command, once the interface is configured and up.
sub open_socket {
  return if $s || $ifname eq '-';
  open(my $f, '<', "/sys/class/net/$ifname/ifindex") or fail("no interface $ifname: $!");
  my $idx = <$f>; close $f; chomp $idx;
  # Protocol ETH_P_ALL captures everything on the interface; protocol 0 makes a send-only socket.
  socket($s, 17, 3, $cap ? 0x0300 : 0) or fail("AF_PACKET socket: $!");
  bind($s, pack('S n i S C C a8', 17, $cap ? 0x0003 : 0, $idx, 0, 0, 0, '')) or fail("bind $ifname: $!");
  setsockopt($s, 1, 8, pack('i', 4194304));
}
sub drain {
  return unless $s;
  while (1) {
    my $buf = '';
    my $from = recv($s, $buf, 65600, 0x40);
    last unless defined $from;
    my $pt = length($from) >= 11 ? unpack('x10 C', $from) : 0;
    out('P', $pt, $buf);
  }
}
sub stats {
  my $t = '';
  if (open(my $f, '<', '/proc/net/stat/nf_conntrack')) { local $/; $t .= "#stat\n" . (<$f> // ''); close $f; }
  if (open(my $f, '<', '/proc/net/snmp')) {
    # TTL expiries (Ip InHdrErrors) and ICMP errors refused by the rate limits (issue 15 K2).
    local $/; my @l = split /\n/, (<$f> // ''); close $f;
    my %v;
    for (my $k = 0; $k + 1 < @l; $k += 2) {
      my ($p, @h) = split ' ', $l[$k]; my ($q, @x) = split ' ', $l[$k + 1];
      @v{map { "$p$_" } @h} = @x;
    }
    $t .= sprintf("#snmp\n%d %d %d\n", map { $v{$_} // 0 } qw(Ip:InHdrErrors Icmp:OutRateLimitGlobal Icmp:OutRateLimitHost));
  }
  if (opendir(my $d, '/proc/net/xt_recent')) {
    for my $n (sort grep { /^nl_/ } readdir $d) {
      my $p = "/proc/net/xt_recent/$n";
      my $c = '';
      if (open(my $f, '<', $p)) { local $/; $c = <$f> // ''; close $f; }
      if (length $c) { if (open(my $w, '>', $p)) { print $w "/\n"; close $w; } }
      my $lines = () = $c =~ /\n/g;
      $t .= "#recent $n $lines\n";
    }
    closedir $d;
  }
  return $t;
}
out('R', 0, join("\n", @$warn));
my $in = '';
my $rin = '';
vec($rin, fileno(STDIN), 1) = 1;
while (1) {
  my $n = select(my $rout = $rin, undef, undef, undef);
  next if $n <= 0;
  drain() if $s && vec($rout, fileno($s), 1);
  if (vec($rout, fileno(STDIN), 1)) {
    my $r = sysread(STDIN, $in, 1048576, length $in);
    exit 0 unless $r;
    while (length($in) >= 6) {
      my ($c, $a, $len) = unpack('a C N', $in);
      last if length($in) < 6 + $len;
      my $p = substr($in, 6, $len);
      substr($in, 0, 6 + $len) = '';
      if ($c eq 'O') { open_socket(); vec($rin, fileno($s), 1) = 1 if $s; out('O', 0, ''); }
      elsif ($c eq 'I') {
        my $ok = $s ? send($s, $p, 0) : undef;
        out('A', defined $ok ? 0 : (($! + 0) & 255) || 1, '');
      } elsif ($c eq 'Y') { drain(); out('Y', 0, $p); }
      elsif ($c eq 'S') { drain(); out('S', 0, stats()); }
      else { fail("bad command '$c'"); }
    }
  }
}
`;
