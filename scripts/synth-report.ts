/**
 * Prints the cdk-nag report of the last synth (cdk.out/validation-report.json): synth already fails on
 * an unacknowledged finding; this lists what each rule pack concluded and every acknowledgement's reason.
 */
import { nagReportIn } from '../infra/shared/nag.ts';

const report = nagReportIn('cdk.out');
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
