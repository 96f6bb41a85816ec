// natlab verify: a real NAT box's captures from both sides, predicted and compared (docs/verify.md).
export { readSplitSides, readTwoSides, SIDE_INSIDE, SIDE_OUTSIDE, type Sides, type SideFrame } from './sides.ts';
export {
  runVerify,
  verifyPassed,
  type VerifyOptions,
  type VerifyReport,
  type PacketVerdict,
  type Finding,
} from './verify.ts';
export { fieldDiffs, signatures, type FieldDiff } from './fields.ts';
export { formatVerifyReport } from './report.ts';
