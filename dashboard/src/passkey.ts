import { browserSupportsWebAuthn, startAuthentication, startRegistration, WebAuthnError, type PublicKeyCredentialCreationOptionsJSON, type PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/browser';
import { api } from './api.ts';

/**
 * Passkeys (WebAuthn) in the browser. A critical approval on the web needs a fresh assertion bound
 * to the approval's request digest; the approvals page sends it as `webauthn` in the approve body.
 * The ceremony's encoding is @simplewebauthn/browser's; the server checks everything.
 */
export interface Passkey {
  id: string;
  name: string;
  transports: string[];
  device_type: 'singleDevice' | 'multiDevice';
  backed_up: boolean;
  counter: number;
  created_at: string;
  last_used_at?: string;
}

export const passkeysSupported = (): boolean => browserSupportsWebAuthn();

/**
 * Asks the server for a challenge bound to this approval (and its request digest), has the
 * reader confirm with one of their passkeys, and returns the assertion to send as `webauthn` with
 * the approve. Throws the server's ApiError (passkey_required: no passkey registered yet, with
 * a message that says to register one on /passkeys) or an Error saying why the browser refused.
 */
export async function passkeyAssertion(approvalId: string): Promise<unknown> {
  const { options } = await api<{ options: PublicKeyCredentialRequestOptionsJSON }>('POST', `/api/v1/approvals/${encodeURIComponent(approvalId)}/passkey-options`, {});
  try {
    return await startAuthentication({ optionsJSON: options });
  } catch (err) {
    throw new Error(`The passkey did not confirm this approval: ${reason(err)}`);
  }
}

/** Registers a new passkey under `name` on this device (or a security key); returns it as stored. */
export async function registerPasskey(name: string): Promise<Passkey> {
  const options = await api<PublicKeyCredentialCreationOptionsJSON>('POST', '/api/v1/passkeys/registration-options', {});
  let response: unknown;
  try {
    response = await startRegistration({ optionsJSON: options });
  } catch (err) {
    throw new Error(`No passkey was registered: ${reason(err)}`);
  }
  return api<Passkey>('POST', '/api/v1/passkeys', { name, response });
}

function reason(err: unknown): string {
  if (err instanceof WebAuthnError && err.code === 'ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED') return 'this authenticator has a passkey here already.';
  if (err instanceof Error && err.name === 'NotAllowedError') return 'it was cancelled or timed out.';
  return err instanceof Error ? err.message : String(err);
}
