// Points and addresses of the built-in scenario (scenarios/vpc-nat-instance.yaml) and of its
// unfiltered twin vpc-nat-instance-open (the same instances in the same order), shared by tests.
import { parseIpv4Addr as ip } from '../../src/packet/addr.ts';

/** Ingress/egress points: instancePoint(i) = 1 + i in the scenario's instance order. */
export const NAT = 1;
export const WEB = 2;
export const APP = 3;
export const app = ip('10.0.1.10');
export const natIp = ip('10.0.0.10');
export const web = ip('10.0.0.20');
export const eip = ip('203.0.113.10');
export const webEip = ip('203.0.113.20');
