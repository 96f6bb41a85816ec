export * from './constants.ts';
export * from './addr.ts';
export * from './parse.ts';
export * from './checksum.ts';
export * from './build.ts';
export * from './format.ts';
export * from './bytes.ts';
export * from './tcp-options.ts';
