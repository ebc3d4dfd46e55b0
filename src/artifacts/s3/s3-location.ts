/**
 * `--store s3://BUCKET[/PREFIX][?endpoint=URL&region=R]` and the credentials from the standard
 * AWS environment variables. Messages never repeat a query value or a credential: only the bucket,
 * the prefix and the endpoint, which are not secret.
 */

export interface S3Location {
  bucket: string;
  /** '' or a key prefix ending in '/'. */
  prefix: string;
  /** An S3-compatible server (MinIO, Ceph, s3rver...): path-style addressing. Absent: AWS. */
  endpoint?: string;
  region: string;
}

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

const USAGE = 's3://BUCKET[/PREFIX][?endpoint=http://HOST:PORT&region=REGION]';
// S3's bucket naming rules (3-63 characters, lower case, digits, dots, hyphens), so a typo fails here.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9._-]+$/;
const REGION = /^[a-z0-9-]{1,40}$/;
const PARAMS = new Set(['endpoint', 'region']);

/** Returns the location, or throws an Error whose message says what is wrong and how to write it. */
export function parseS3Location(spec: string, env: NodeJS.ProcessEnv): S3Location {
  const fail = (why: string): never => {
    throw new Error(`--store: ${why}; write it as ${USAGE}`);
  };
  const m = /^s3:\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?$/.exec(spec);
  if (!m) return fail('not an s3:// location');
  const [, bucket, path, query] = m;
  // Checked first: anything with '@' may hold a key, which is never echoed.
  if (bucket!.includes('@') || bucket!.includes(':')) fail('credentials do not go in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
  if (!BUCKET.test(bucket!)) fail(`'${bucket}' is not an S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')`);
  const segments = path!.split('/').filter(Boolean);
  for (const s of segments) {
    if (!PREFIX_SEGMENT.test(s) || s === '.' || s === '..') fail(`the prefix segment '${s}' may hold only A-Z, a-z, 0-9, '.', '_', '-' (and is not '.' or '..')`);
  }
  const params = new URLSearchParams(query ?? '');
  for (const key of params.keys()) {
    if (!PARAMS.has(key)) fail(`unknown parameter '${key.slice(0, 40)}' (known: endpoint, region)`);
    if (params.getAll(key).length > 1) fail(`'${key}' is given twice`);
  }
  let endpoint: string | undefined;
  const rawEndpoint = params.get('endpoint');
  if (rawEndpoint !== null) {
    let url: URL | undefined;
    try {
      url = new URL(rawEndpoint);
    } catch {
      // reported below
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
      fail('endpoint must be http(s)://HOST[:PORT] with no path, query or credentials');
    }
    endpoint = url!.origin;
  }
  const region = params.get('region') ?? env.AWS_REGION ?? '';
  if (!region) fail('no region: add &region=REGION (e.g. us-east-1) or set AWS_REGION');
  if (!REGION.test(region)) fail(`'${region.slice(0, 40)}' is not a region name such as us-east-1`);
  return { bucket: bucket!, prefix: segments.length ? `${segments.join('/')}/` : '', ...(endpoint ? { endpoint } : {}), region };
}

/** The credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or an Error naming the missing ones. */
export function s3CredentialsFromEnv(env: NodeJS.ProcessEnv): S3Credentials {
  const missing = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'].filter((k) => !env[k]);
  if (missing.length) throw new Error(`--store s3:// needs credentials: set ${missing.join(' and ')} (and AWS_SESSION_TOKEN for temporary credentials) in the server's environment`);
  return { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY!, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) };
}

/** Where the store is, for messages and logs (no credentials). */
export function describeS3Location(loc: S3Location): string {
  return `s3://${loc.bucket}/${loc.prefix}${loc.endpoint ? ` at ${loc.endpoint}` : ` (AWS ${loc.region})`}`;
}
