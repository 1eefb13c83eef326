/**
 * A server interceptor that ends a call whose request has not arrived within the timeout: an
 * open stream that never sends would otherwise hold its memory until the connection ends.
 */
import * as grpc from '@grpc/grpc-js';

export function firstMessageTimeout(timeoutMs: number): grpc.ServerInterceptor {
  return (method, call) => {
    let timer: NodeJS.Timeout | undefined;
    const stop = () => {
      clearTimeout(timer);
      timer = undefined;
    };
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        timer = setTimeout(() => {
          timer = undefined;
          call.sendStatus({ code: grpc.status.DEADLINE_EXCEEDED, details: `request not received within ${timeoutMs / 1000} s` });
        }, timeoutMs);
        next({
          // grpc-js runs a unary or server-streaming handler only once the client has half-closed,
          // so for those the request has arrived at the half-close, not at the message.
          onReceiveMessage(message, nextMessage) {
            if (method.requestStream) stop();
            nextMessage(message);
          },
          onReceiveHalfClose(nextHalfClose) {
            stop();
            nextHalfClose();
          },
          onCancel: stop,
        });
      },
      sendStatus(status, next) {
        stop();
        next(status);
      },
    });
  };
}
