/**
 * Prints the cdk-nag report of the last synth (cdk.out/validation-report.json): synth already fails on
 * an unacknowledged finding; this lists what each rule pack concluded and every acknowledgement's reason.
 */
import { readFileSync } from 'node:fs';

interface Report {
  pluginReports: Array<{
    pluginName: string;
    conclusion: string;
    violations: unknown[];
    suppressedViolations: Array<{
      ruleName: string;
      reason: string;
      violatingConstructs: Array<{ constructPath: string }>;
    }>;
  }>;
}

const report = JSON.parse(readFileSync('cdk.out/validation-report.json', 'utf8')) as Report;
for (const plugin of report.pluginReports) {
  console.log(
    `cdk-nag ${plugin.pluginName}: ${plugin.conclusion}, ${plugin.violations.length} unacknowledged finding(s)`,
  );
  for (const ack of plugin.suppressedViolations) {
    const paths = ack.violatingConstructs.map((construct) => construct.constructPath).join(', ');
    console.log(`  acknowledged ${ack.ruleName} on ${paths}: ${ack.reason}`);
  }
  if (plugin.violations.length > 0) process.exitCode = 1;
}
