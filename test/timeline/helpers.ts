// Shared fixtures for the timeline tests.
import { baseObject } from '../scenario/helpers.ts';

/** Two NAT instances (nat active, natb standby), the private route table to nat. */
export function haObject(timeline: unknown[]): Record<string, any> {
  const o = baseObject();
  o.instances.natb = {
    subnet: 'public',
    privateIp: '10.0.0.11',
    elasticIp: '203.0.113.11',
    sourceDestCheck: false,
    natInstance: { bootScript: 'configure-pat' },
  };
  o.instances.spare = { subnet: 'public', privateIp: '10.0.0.12' };
  o.timeline = timeline;
  return o;
}
