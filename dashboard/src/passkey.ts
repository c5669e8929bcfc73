/**
 * Passkeys (WebAuthn) in the browser. A critical approval on the web needs a fresh assertion bound
 * to the approval's request digest; the approvals page sends it as `webauthn` in the approve body.
 */
export async function passkeyAssertion(_approvalId: string): Promise<unknown> {
  throw new Error('passkeys are not available yet');
}
