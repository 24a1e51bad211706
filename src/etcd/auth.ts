/**
 * Decoders of the Auth service (etcd's built-in users and roles). Every method needs the
 * `auth` capability. Summaries carry user and role names and permission keys, and never
 * a password: password and hashed-password fields are skipped without being read.
 */
import { capability, decoded, Details, EMPTY, enumName, keySummary } from './decoded.js';
import type { DecodedRequest, RequestDecoder } from './types.js';
import { WireReader } from './wire.js';

const PERMISSION_TYPES = ['READ', 'WRITE', 'READWRITE'] as const;
const AUTH = Object.freeze([Object.freeze(capability('auth'))]);

/**
 * A decoder that records the given string fields (field number -> detail name) and skips
 * everything else. Only name fields are ever listed here, so a password cannot leak.
 */
function namesOnly(op: string, names: Readonly<Record<number, string>>): RequestDecoder {
  return (message) => {
    const details = new Details();
    const r = new WireReader(message);
    while (r.next()) {
      const name = names[r.field];
      if (name !== undefined) details.always(name, r.string());
      else r.skip();
    }
    return decoded(AUTH, keySummary(op, undefined, undefined, details));
  };
}

/** Auth.AuthEnable. */
export const decodeAuthEnableRequest = namesOnly('auth_enable', {});
/** Auth.AuthDisable. */
export const decodeAuthDisableRequest = namesOnly('auth_disable', {});
/** Auth.AuthStatus (etcd 3.5+). */
export const decodeAuthStatusRequest = namesOnly('auth_status', {});
/** Auth.Authenticate: name only (field 2, the password, is never read). */
export const decodeAuthenticateRequest = namesOnly('authenticate', { 1: 'user' });
/** Auth.UserGet. */
export const decodeUserGetRequest = namesOnly('user_get', { 1: 'user' });
/** Auth.UserList. */
export const decodeUserListRequest = namesOnly('user_list', {});
/** Auth.UserDelete. */
export const decodeUserDeleteRequest = namesOnly('user_delete', { 1: 'user' });
/** Auth.UserChangePassword: name only (password 2 and hashedPassword 3 are never read). */
export const decodeUserChangePasswordRequest = namesOnly('user_change_password', { 1: 'user' });
/** Auth.UserGrantRole. */
export const decodeUserGrantRoleRequest = namesOnly('user_grant_role', { 1: 'user', 2: 'role' });
/** Auth.UserRevokeRole. */
export const decodeUserRevokeRoleRequest = namesOnly('user_revoke_role', { 1: 'user', 2: 'role' });
/** Auth.RoleAdd. */
export const decodeRoleAddRequest = namesOnly('role_add', { 1: 'role' });
/** Auth.RoleGet. */
export const decodeRoleGetRequest = namesOnly('role_get', { 1: 'role' });
/** Auth.RoleList. */
export const decodeRoleListRequest = namesOnly('role_list', {});
/** Auth.RoleDelete. */
export const decodeRoleDeleteRequest = namesOnly('role_delete', { 1: 'role' });

/** Auth.UserAdd: name and the no_password option; password 2 and hashedPassword 4 are never read. */
export function decodeUserAddRequest(message: Buffer): DecodedRequest {
  let user = '';
  let noPassword = false;
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1: user = r.string(); break;
      case 3: {
        // UserAddOptions; repeated occurrences of a message field merge, so later flags win.
        const o = new WireReader(r.bytes());
        while (o.next()) {
          if (o.field === 1) noPassword = o.bool();
          else o.skip();
        }
        break;
      }
      default: r.skip();
    }
  }
  const details = new Details().always('user', user).flag('no_password', noPassword);
  return decoded(AUTH, keySummary('user_add', undefined, undefined, details));
}

/** Auth.RoleGrantPermission: role name, permission type and key range. */
export function decodeRoleGrantPermissionRequest(message: Buffer): DecodedRequest {
  let role = '';
  let permType = 0;
  let key = EMPTY;
  let rangeEnd = EMPTY;
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1: role = r.string(); break;
      case 2: {
        // authpb.Permission; occurrences merge field by field, as protobuf requires.
        const p = new WireReader(r.bytes());
        while (p.next()) {
          switch (p.field) {
            case 1: permType = p.int32(); break;
            case 2: key = p.bytes(); break;
            case 3: rangeEnd = p.bytes(); break;
            default: p.skip();
          }
        }
        break;
      }
      default: r.skip();
    }
  }
  const details = new Details().always('role', role).always('perm_type', enumName(PERMISSION_TYPES, permType));
  return decoded(AUTH, keySummary('role_grant_permission', key, rangeEnd, details));
}

/** Auth.RoleRevokePermission: role name and key range. */
export function decodeRoleRevokePermissionRequest(message: Buffer): DecodedRequest {
  let role = '';
  let key = EMPTY;
  let rangeEnd = EMPTY;
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1: role = r.string(); break;
      case 2: key = r.bytes(); break;
      case 3: rangeEnd = r.bytes(); break;
      default: r.skip();
    }
  }
  return decoded(AUTH, keySummary('role_revoke_permission', key, rangeEnd, new Details().always('role', role)));
}
