/** In the bundle, nodemailer's table of named services: none, since every transport is given its host and port. */
export default function wellKnown(_service: string): false {
  return false;
}
