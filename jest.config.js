// Tests are written in TypeScript and compiled by `tsc` (npm run build) into dist/;
// jest runs the compiled ESM directly, so what is tested is what ships.
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/dist/test'],
  testMatch: ['**/*.test.js'],
  moduleFileExtensions: ['js'],
  transform: {},
  testTimeout: 120000,
  maxWorkers: 2,
};
