// The input side of an annotated replay: DIR/input.pcapng holds every input record, byte for byte
// and in order (so its frame numbers are the input capture's), on one interface per ingress point
// ("internet", "app-10.0.1.10", ... and "not-fed" for frames counted before the engines), each
// packet commented with its fate on every engine (sinks/annotate.ts: inputComment).
import { formatIpv4 } from '../../packet/addr.ts';
import { linkTypeName } from '../../packet/constants.ts';
import { PcapngWriter } from '../../pcap/pcapng-writer.ts';
import type { Scenario } from '../../spec/scenario.ts';
import { pointInterfaceName } from './annotate.ts';

export const INPUT_CAPTURE_FILE = 'input.pcapng';

export class InputCapture {
  /** Interface id per "ingress|linkType" (added as they are first used). */
  private readonly ids = new Map<string, number>();

  private constructor(
    private readonly w: PcapngWriter,
    private readonly scenario: Scenario,
  ) {}

  static async open(path: string, scenario: Scenario, inputPath: string): Promise<InputCapture> {
    const w = await PcapngWriter.open(path, {
      interfaces: [],
      allowNoInterface: true,
      comment: `natlab replay: the input capture ${inputPath}, each packet on the interface of its ingress point, commented with its fate on every engine`,
    });
    return new InputCapture(w, scenario);
  }

  get path(): string {
    return this.w.path;
  }

  /** Writes one input record (its original bytes and link type). ingress < 0: not fed. */
  write(
    ingress: number,
    linkType: number,
    tsSec: number,
    tsNsec: number,
    data: Uint8Array,
    origLen: number,
    comment: string,
  ): Promise<void> {
    const key = `${ingress}|${linkType}`;
    let id = this.ids.get(key);
    if (id === undefined) {
      const name = ingress < 0 ? 'not-fed' : pointInterfaceName(this.scenario, ingress, formatIpv4);
      id = this.w.addInterface({
        linkType,
        name,
        description: `input frames ${ingress < 0 ? 'counted before the engines' : `entering at ${name}`} (${linkTypeName(linkType)})`,
      });
      this.ids.set(key, id);
    }
    return this.w.write({ interfaceId: id, tsSec, tsNsec, data, origLen: Math.max(origLen, data.length), comment });
  }

  close(): Promise<void> {
    return this.w.close();
  }
}
