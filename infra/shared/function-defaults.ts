/**
 * Secure defaults for every function of the stack, in one place: Node 24 on arm64, an ESM bundle built
 * by the local esbuild (no Docker), a log group with a retention, a role of its own with no managed
 * policies.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ENV, type FunctionEnvironment } from '../../functions/shared/environment.ts';
import { bundledCode } from './bundled-code.ts';

/** Every function's memory size unless its construct says otherwise (its CPU share follows it). */
export const DEFAULT_MEMORY_MB = 256;

export interface MailerFunctionProps {
  /** Entry file, relative to the project root, e.g. functions/sender/handler.ts */
  readonly entry: string;
  readonly description: string;
  /** Keyed by the names in functions/shared/environment.ts, which the loaders read. */
  readonly environment: FunctionEnvironment;
  /**
   * The providers setting (JSON, with client secret ids): shipped as a file with the code, not in the
   * environment, whose 4 KB a private CA and a few providers would fill.
   */
  readonly providersJson: string;
  /** @default Duration.seconds(60) */
  readonly timeout?: Duration;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/** Beside index.mjs in every function's code. */
export const PROVIDERS_FILE = 'providers.json';

/** A Lambda function with the project's defaults; exposes its role and log group. */
export class MailerFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: MailerFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs ${id}: ${props.description}`,
    });
    // Write to its own log group only (instead of the AWSLambdaBasicExecutionRole managed policy).
    this.logGroup.grantWrite(this.role);
    this.function = new lambda.Function(this, 'Function', {
      code: bundledCode(props.entry, { [PROVIDERS_FILE]: props.providersJson }),
      handler: 'index.handler',
      description: props.description,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? DEFAULT_MEMORY_MB,
      timeout: props.timeout ?? Duration.seconds(60),
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        [ENV.providersFile]: PROVIDERS_FILE,
        ...props.environment,
      },
    });
  }
}
